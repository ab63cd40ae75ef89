"""Real-time events of the documents app, published to the owner's stream
(``ws/events/``) after commit. Called only by ``documents.services``.

- ``document.status`` ``{type, document}``: a document was uploaded or its
  processing state changed; ``document`` is exactly the REST detail body
  (``DocumentDetailSerializer``).
- ``document.deleted`` ``{type, document_id}``.
"""

from __future__ import annotations

from documents.models import DocumentMetadata
from documents.serializers import DocumentDetailSerializer
from realtime.publish import publish_on_commit, user_group


def document_status(document: DocumentMetadata) -> None:
    publish_on_commit(
        user_group(document.user_id),
        {"type": "document.status", "document": DocumentDetailSerializer(document).data},
    )


def document_deleted(*, owner_id: int, document_id: int) -> None:
    event = {"type": "document.deleted", "document_id": document_id}
    publish_on_commit(user_group(owner_id), event)
