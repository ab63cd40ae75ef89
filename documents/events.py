"""Real-time events of the documents app, published to the owner's stream
(``ws/events/``) after commit. Called only by ``documents.services``.

- ``document.status`` ``{type, document}``: a document was uploaded or its
  processing state changed; ``document`` is exactly the REST detail body
  (``DocumentDetailSerializer``).
- ``document.deleted`` ``{type, document_id}``.

The outbox (``outbox.services.outbox_emit``, in the change's transaction,
when ``OUTBOX_ENABLED``) gets ``document.uploaded``, ``document.processed``
and ``document.failed``, each with the ``document.status`` socket event as
its payload (the text already encoded for the socket), and
``document.deleted``; the aggregate is the document, owned by its user.
Claims, heartbeats and returns to pending go to sockets only.
"""

from __future__ import annotations

from typing import Any

from documents.models import DocumentMetadata, DocumentStatus
from documents.serializers import DocumentDetailSerializer
from outbox.models import AggregateType, EventType
from outbox.services import outbox_emit
from realtime.publish import publish_on_commit, user_group

# The outbox's event for a status reached, when it has one.
_FINISHED = {
    DocumentStatus.PROCESSED: EventType.DOCUMENT_PROCESSED,
    DocumentStatus.FAILED: EventType.DOCUMENT_FAILED,
}


def _to_outbox(
    kind: str, *, owner_id: int, document_id: int, payload: dict[str, Any] | str
) -> None:
    outbox_emit(
        type=kind,
        aggregate_type=AggregateType.DOCUMENT,
        aggregate_id=str(document_id),
        user_id=owner_id,
        payload=payload,
    )


def _status_event(document: DocumentMetadata) -> str:
    """Publish ``document.status``; returns its encoded text."""
    sent = publish_on_commit(
        user_group(document.user_id),
        {"type": "document.status", "document": DocumentDetailSerializer(document).data},
    )
    return sent["text"]


def document_uploaded(document: DocumentMetadata) -> None:
    text = _status_event(document)
    _to_outbox(
        EventType.DOCUMENT_UPLOADED,
        owner_id=document.user_id,
        document_id=document.pk,
        payload=text,
    )


def document_status(document: DocumentMetadata) -> None:
    text = _status_event(document)
    kind = _FINISHED.get(DocumentStatus(document.status))
    if kind is not None:
        _to_outbox(kind, owner_id=document.user_id, document_id=document.pk, payload=text)


def document_deleted(*, owner_id: int, document_id: int) -> None:
    event = {"type": "document.deleted", "document_id": document_id}
    text = publish_on_commit(user_group(owner_id), event)["text"]
    _to_outbox(EventType.DOCUMENT_DELETED, owner_id=owner_id, document_id=document_id, payload=text)
