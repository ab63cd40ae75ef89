"""Real-time events of the users app. Called only by ``users.services``.

- ``credentials.revoked`` ``{type}`` to every socket a principal holds
  (``realtime.publish.principal_group``): its password changed, the account
  was deactivated or deleted, or its service token was revoked. Each socket
  closes with 4401 on hearing it.
"""

from __future__ import annotations

from realtime.publish import principal_group, publish_on_commit
from users.principals import service_principal_key


def user_credentials_revoked(*, user_id: int) -> None:
    publish_on_commit(principal_group(user_id), {"type": "credentials.revoked"})


def service_token_credentials_revoked(*, token_id: int) -> None:
    publish_on_commit(
        principal_group(service_principal_key(token_id)), {"type": "credentials.revoked"}
    )
