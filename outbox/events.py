"""The outbox publishes nothing of its own to sockets: it is how the other
apps' events (``chat_history.events``, ``documents.events``) leave the
process. The events it carries are listed in ``outbox.models.EventType``."""
