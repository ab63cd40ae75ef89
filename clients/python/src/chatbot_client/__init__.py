"""A Python client of the chatbot backend, for the AI service.

``ChatbotClient`` covers what the AI service calls (sessions, history in the
backend's, OpenAI's and LangChain's formats, messages with idempotency keys,
streamed replies, the document processing protocol, users' provider keys,
usage and budgets) with typed results, retries and the backend's error shape;
``verify_webhook`` checks a signed webhook; ``chatbot_client.langchain`` has
``ChatbotMessageHistory`` (needs ``langchain-core``).
"""

from chatbot_client.client import OMIT, ChatbotClient, DeletionsFeed, ReplyStream, __version__
from chatbot_client.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ChatbotClientError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
)
from chatbot_client.models import (
    Author,
    Budget,
    BudgetLevel,
    Claim,
    Deletion,
    DeletionPage,
    Document,
    HistoryPage,
    KeyGrant,
    LastMessage,
    Message,
    OpenAIMessage,
    Session,
    SessionPage,
    Siblings,
    UsageRecord,
)
from chatbot_client.webhooks import WebhookVerificationError, sign_webhook, verify_webhook

__all__ = [
    "OMIT",
    "ApiError",
    "AuthenticationError",
    "Author",
    "BadRequestError",
    "Budget",
    "BudgetLevel",
    "ChatbotClient",
    "ChatbotClientError",
    "Claim",
    "ConflictError",
    "Deletion",
    "DeletionPage",
    "DeletionsFeed",
    "Document",
    "HistoryPage",
    "KeyGrant",
    "LastMessage",
    "Message",
    "NotFoundError",
    "OpenAIMessage",
    "PermissionDeniedError",
    "RateLimitError",
    "ReplyStream",
    "ServerError",
    "ServiceUnavailableError",
    "Session",
    "SessionPage",
    "Siblings",
    "TransportError",
    "UsageRecord",
    "WebhookVerificationError",
    "__version__",
    "sign_webhook",
    "verify_webhook",
]
