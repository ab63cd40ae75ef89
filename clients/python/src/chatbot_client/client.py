"""The synchronous client of the chatbot backend, for the AI service."""

from __future__ import annotations

import email.utils
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote

import httpx

from chatbot_client.errors import ApiError, TransportError
from chatbot_client.models import (
    Budget,
    Claim,
    Deletion,
    DeletionPage,
    Document,
    HistoryPage,
    KeyGrant,
    Message,
    OpenAIMessage,
    Session,
    SessionPage,
    UsageRecord,
)

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = ["OMIT", "ChatbotClient", "DeletionsFeed", "ReplyStream"]

logger = logging.getLogger("chatbot_client")

__version__ = "0.1.0"

#: The statuses retried: the server answers them before doing any work.
RETRY_STATUSES: Final = frozenset({429, 503})
#: Methods whose repetition has no further effect (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Request extension that marks a request safe to repeat after a broken connection.
_RETRY_SAFE = "chatbot_client.retry_safe"
#: The longest delta the stream relay takes (``StreamInput.delta``).
STREAM_DELTA_MAX_LENGTH: Final = 16000
#: The largest page of the history the server serves (``CHAT_HISTORY_MAX_LIMIT``).
HISTORY_PAGE_MAX: Final = 500


class _Omitted(Enum):
    OMIT = "OMIT"


#: "Not sent", where ``None`` means something (``parent_id=None`` starts a new first message).
OMIT: Final = _Omitted.OMIT


def _iso(moment: datetime | str) -> str:
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        raise ValueError("Give an aware datetime (a naive one has no defined instant).")
    # "Z" rather than "+00:00": a "+" in a query string would need escaping.
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _params(**values: Any) -> dict[str, str | int]:
    params: dict[str, str | int] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, datetime):
            params[name] = _iso(value)
        else:
            params[name] = value
    return params


def _path(*parts: str | int) -> str:
    return "/".join(quote(str(part), safe="") for part in parts)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class ChatbotClient:
    """The backend's API for the AI service, authenticated with a service token.

    ``base_url`` is the server's root (``http://127.0.0.1:8000``, without
    ``/api``); ``token`` a service token (``svc_...``) whose scopes cover the
    calls made: ``chat:read`` (sessions, history), ``chat:write`` (sessions,
    messages, streaming), ``documents:process``, ``keys:read``, ``usage:write``.
    A context manager: ``with ChatbotClient(...) as client:`` closes its
    connections at the end (or call :meth:`close`).

    **Errors.** An error answer raises :class:`~chatbot_client.errors.ApiError`
    (a subclass per status: ``NotFoundError``, ``ConflictError``,
    ``RateLimitError``...) with the server's ``code``, ``detail``, field
    ``errors`` and ``X-Request-ID``; a connection that could not be made or
    broke raises :class:`~chatbot_client.errors.TransportError`.

    **Retries.** Up to ``max_retries`` times, with exponential backoff
    (``backoff_base * 2**attempt`` seconds, at most ``max_backoff``) and random
    jitter (each wait is 50-100% of that), the client repeats:

    - any request answered **429 or 503**. Both are answered before anything is
      done: a throttle refuses a write before the view runs ("a refused write
      does not count"), and a 503 means the database (``database_unavailable``)
      or the channel layer (``realtime_unavailable``) could not be reached, so
      nothing was written or relayed. A POST is therefore safe to repeat after
      either. Their ``Retry-After`` is honoured: the wait is at least that long
      (plus up to 10% jitter); when it asks for more than ``max_retry_after``
      seconds the error is raised at once (``RateLimitError.retry_after`` says
      how long to wait) instead of blocking the worker.
    - any request whose **connection could not be opened** (refused, connect
      timeout, no free connection in the pool): it never reached the server.
    - a request whose connection **broke after it was sent** (read timeout,
      reset), whose outcome is unknown, only if repeating it is harmless:
      GET/PUT/DELETE, and a POST that carries an ``Idempotency-Key`` (a message
      create: the server returns the original message, 200, for a key it has
      seen; a usage record: the original record) or that this client marks safe
      (a ``processing`` heartbeat, which only renews the lease). Other POSTs (a
      claim, a final document report, a stream delta) raise ``TransportError``:
      repeating them blindly could claim a second document or show a piece of
      text twice.

    With ``auto_idempotency_keys`` (the default) :meth:`post_message` gives a
    message without a ``client_message_id`` a random one, so every message
    create is safe to retry; pass your own key derived from the run (say
    ``f"{run_id}:answer"``) to be safe across restarts of the worker too.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float | httpx.Timeout = httpx.Timeout(30.0, connect=5.0),  # noqa: B008 - immutable
        max_retries: int = 3,
        backoff_base: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        auto_idempotency_keys: bool = True,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise ValueError("A service token is required.")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.auto_idempotency_keys = auto_idempotency_keys
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            # Close idle connections before a server's keep-alive timeout
            # (uvicorn's is 5 s) can close them under a request.
            limits=httpx.Limits(keepalive_expiry=4.0),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"chatbot-client-python/{__version__} httpx/{httpx.__version__}",
                **(headers or {}),
            },
        )

    # --- plumbing ----------------------------------------------------------------

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> ChatbotClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _backoff(self, attempt: int) -> float:
        delay = min(self.max_backoff, self.backoff_base * 2**attempt)
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        retry_safe: bool | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with the retry policy (see the class); return a success answer
        (its body read unless ``stream``) or raise."""
        request_headers = {"X-Request-ID": uuid.uuid4().hex, **(headers or {})}
        request = self._http.build_request(
            method, url, params=params, json=json, headers=request_headers
        )
        if retry_safe is None:
            retry_safe = method in IDEMPOTENT_METHODS or "Idempotency-Key" in request.headers
        attempt = 0
        while True:
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                never_sent = isinstance(
                    exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
                hopeless = isinstance(exc, httpx.UnsupportedProtocol)  # a wrong base_url
                if hopeless or attempt >= self.max_retries or not (never_sent or retry_safe):
                    raise TransportError(f"{method} {request.url.path}: {exc!r}") from exc
                delay = self._backoff(attempt)
                logger.warning(
                    "%s %s failed (%r); retry %d/%d in %.2f s",
                    method,
                    request.url.path,
                    exc,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
            else:
                if response.status_code < 400:
                    if not stream:
                        response.read()
                    return response
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                retryable = response.status_code in RETRY_STATUSES and attempt < self.max_retries
                if retryable and retry_after is not None and retry_after > self.max_retry_after:
                    retryable = False  # longer than we may block: the caller decides
                if not retryable:
                    response.read()
                    response.close()
                    raise ApiError.from_response(response, retry_after=retry_after)
                response.close()
                if retry_after is not None:
                    delay = retry_after * (1 + random.uniform(0, 0.1))  # noqa: S311 - jitter
                else:
                    delay = self._backoff(attempt)
                logger.info(
                    "%s %s answered %d; retry %d/%d in %.2f s (request id %s)",
                    method,
                    request.url.path,
                    response.status_code,
                    attempt + 1,
                    self.max_retries,
                    delay,
                    response.headers.get("X-Request-ID"),
                )
            self._sleep(delay)
            attempt += 1

    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        return self._send(method, url, **kwargs).json()

    # --- sessions ----------------------------------------------------------------

    def create_session(
        self, user_id: int, *, title: str | None = None, instructions: str | None = None
    ) -> Session:
        """Create a session owned by ``user_id`` (``chat:write``). Without a title
        the session takes one from its first user message; ``instructions`` is
        its system prompt. Not retried after a broken connection (it could
        create two sessions); 429/503 are."""
        body: dict[str, Any] = {"user_id": user_id}
        if title is not None:
            body["title"] = title
        if instructions is not None:
            body["instructions"] = instructions
        return Session.from_json(self._json("POST", "/api/chat-history/sessions/", json=body))

    def get_session(self, session_id: str) -> Session:
        """One session, with its ``instructions`` (``chat:read``). 404: ``NotFoundError``."""
        return Session.from_json(
            self._json("GET", f"/api/chat-history/sessions/{_path(session_id)}/")
        )

    def list_sessions(
        self,
        *,
        user_id: int | None = None,
        archived: bool | None = None,
        search: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> SessionPage:
        """One page of sessions, pinned first then newest activity (``chat:read``).
        Without ``user_id`` a service token sees every user's."""
        params = _params(
            user_id=user_id, archived=archived, search=search, page=page, page_size=page_size
        )
        return SessionPage.from_json(
            self._json("GET", "/api/chat-history/sessions/", params=params)
        )

    def iter_sessions(
        self,
        *,
        user_id: int | None = None,
        archived: bool | None = None,
        search: str | None = None,
        page_size: int = 100,
    ) -> Iterator[Session]:
        """Every session of :meth:`list_sessions`, page after page."""
        page = 1
        while True:
            result = self.list_sessions(
                user_id=user_id, archived=archived, search=search, page=page, page_size=page_size
            )
            yield from result.results
            if not result.has_next:
                return
            page += 1

    # --- history -----------------------------------------------------------------

    def _history(self, session_id: str, params: Mapping[str, str | int]) -> Any:
        return self._json(
            "GET", f"/api/chat-history/sessions/{_path(session_id)}/messages/", params=params
        )

    def get_history(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        before: int | None = None,
        after: int | None = None,
        leaf: int | None = None,
    ) -> HistoryPage:
        """A keyset page of the session's active path, oldest first (``chat:read``).

        No cursor: the newest ``limit`` messages (server default 100, at most
        500); ``before=page.oldest_id`` the ones just older, ``after=page.newest_id``
        the ones just newer (``after=0``: from the very first). ``leaf`` reads the
        path that ends at that message instead of the active one.
        """
        params = _params(limit=limit, before=before, after=after, leaf=leaf)
        return HistoryPage.from_json(self._history(session_id, params))

    def iter_messages(
        self, session_id: str, *, leaf: int | None = None, page_size: int = HISTORY_PAGE_MAX
    ) -> Iterator[Message]:
        """The whole path (active, or ending at ``leaf``), oldest first, page by page."""
        after = 0
        while True:
            page = self.get_history(session_id, limit=page_size, after=after, leaf=leaf)
            yield from page.messages
            if not page.has_more_after or page.newest_id is None:
                return
            after = page.newest_id

    def get_recent_messages(
        self, session_id: str, count: int, *, leaf: int | None = None
    ) -> list[Message]:
        """The newest ``count`` messages of the path, oldest first (pages back as needed)."""
        pages: list[tuple[Message, ...]] = []
        remaining, before = count, None
        while remaining > 0:
            page = self.get_history(
                session_id, limit=min(remaining, HISTORY_PAGE_MAX), before=before, leaf=leaf
            )
            pages.append(page.messages)
            remaining -= len(page.messages)
            if not page.has_more_before or page.oldest_id is None or not page.messages:
                break
            before = page.oldest_id
        return [message for messages in reversed(pages) for message in messages]

    def get_openai_messages(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        before: int | None = None,
        after: int | None = None,
        leaf: int | None = None,
    ) -> list[OpenAIMessage]:
        """The history as a chat-completions ``messages`` list (``?format=openai``):
        ``[{"role", "content"}]``, oldest first, the session's instructions first
        as the system message. The window parameters are those of :meth:`get_history`."""
        params = _params(format="openai", limit=limit, before=before, after=after, leaf=leaf)
        data = self._history(session_id, params)
        return [{"role": item["role"], "content": item["content"]} for item in data]

    def get_langchain_messages(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        before: int | None = None,
        after: int | None = None,
        leaf: int | None = None,
        instructions: bool = False,
    ) -> list[BaseMessage]:
        """A page of the history as LangChain messages (needs ``langchain-core``).

        user → ``HumanMessage``, assistant → ``AIMessage``, system → ``SystemMessage``;
        what :class:`~chatbot_client.langchain.ChatbotMessageHistory` stored of a
        LangChain message (id, name, response and usage metadata, tool calls)
        comes back as it was. ``instructions=True`` puts the session's system
        prompt first, as ``?format=openai`` does (one more request).
        """
        try:
            from chatbot_client.langchain import to_langchain_message
        except ImportError as exc:  # the extra is not installed
            raise ImportError(
                "LangChain messages need langchain-core: pip install 'chatbot-client[langchain]'"
            ) from exc

        page = self.get_history(session_id, limit=limit, before=before, after=after, leaf=leaf)
        messages = [to_langchain_message(message) for message in page.messages]
        if instructions:
            from langchain_core.messages import SystemMessage

            prompt = self.get_session(session_id).instructions
            if prompt:
                messages.insert(0, SystemMessage(content=prompt))
        return messages

    # --- messages ----------------------------------------------------------------

    def post_message(
        self,
        session_id: str,
        *,
        role: Literal["user", "assistant", "system"],
        content: str,
        metadata: Mapping[str, Any] | None = None,
        client_message_id: str | None = None,
        stream_id: str | None = None,
        parent_id: int | _Omitted | None = OMIT,
        author_id: int | None = None,
        key_id: int | None = None,
    ) -> Message:
        """Add a message to the session (``chat:write``); returns it with
        ``created`` True (201) or False (200: the key was already used here, and
        this is the original message: nothing was written).

        ``client_message_id`` is the idempotency key (sent as the
        ``Idempotency-Key`` header; at most 128 characters, unique per session);
        without one, a random key is made when ``auto_idempotency_keys`` is on.
        The same key with another role or content is a ``ConflictError``
        (``idempotency_key_reused``, ``context["message_id"]``).
        ``stream_id`` links the message to the deltas streamed before it (kept
        as ``metadata.stream_id``). ``parent_id`` branches (``None``: a new
        first message; omitted: after the active tip). ``author_id`` names the
        member who wrote a user message. ``metadata`` is any JSON object (at most
        16 KiB); with ``metadata.usage`` (OpenAI's usage object) and
        ``metadata.model``, a token holding ``usage:write`` also records the
        call in the usage ledger, against ``key_id`` if given (so do not record
        it again with :meth:`record_usage`); a used-up budget is then a
        ``ConflictError`` (``budget_exceeded``) and nothing is written.
        """
        body: dict[str, Any] = {"role": role, "content": content}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if stream_id is not None:
            body["stream_id"] = stream_id
        if parent_id is not OMIT:
            body["parent_id"] = parent_id
        if author_id is not None:
            body["author_id"] = author_id
        if key_id is not None:
            body["key_id"] = key_id
        if client_message_id is None and self.auto_idempotency_keys:
            client_message_id = f"auto-{uuid.uuid4().hex}"
        headers = {"Idempotency-Key": client_message_id} if client_message_id else None
        response = self._send(
            "POST",
            f"/api/chat-history/sessions/{_path(session_id)}/messages/",
            json=body,
            headers=headers,
        )
        return Message.from_json(response.json(), created=response.status_code == 201)

    def get_message(self, message_id: int) -> Message:
        """One message (``chat:read``)."""
        return Message.from_json(self._json("GET", f"/api/chat-history/messages/{message_id}/"))

    def delete_message(self, message_id: int, *, permanent: bool = False) -> None:
        """Move a message to the trash (``chat:write``); ``permanent`` deletes it for good."""
        self._send(
            "DELETE",
            f"/api/chat-history/messages/{message_id}/",
            params=_params(permanent=True if permanent else None),
        )

    # --- streaming ---------------------------------------------------------------

    def stream_delta(
        self, session_id: str, stream_id: str, delta: str, *, seq: int | None = None
    ) -> bool:
        """Relay one piece of a reply to the session's sockets as ``assistant.delta``
        (``chat:write``); nothing is stored. Returns the server's ``relayed``.
        A 503 ``realtime_unavailable`` (the channel layer is down) is retried,
        then raised. See :meth:`reply_stream` for a helper that numbers ``seq``."""
        body: dict[str, Any] = {"stream_id": stream_id, "delta": delta}
        if seq is not None:
            body["seq"] = seq
        return self._stream_post(session_id, body)

    def stream_typing(self, session_id: str, stream_id: str, typing: bool = True) -> bool:
        """Relay ``assistant.typing`` (true while generating) to the session's sockets."""
        return self._stream_post(session_id, {"stream_id": stream_id, "typing": typing})

    def _stream_post(self, session_id: str, body: dict[str, Any]) -> bool:
        data = self._json(
            "POST", f"/api/chat-history/sessions/{_path(session_id)}/stream/", json=body
        )
        return bool(data.get("relayed", True))

    def reply_stream(
        self, session_id: str, stream_id: str | None = None, *, typing: bool = True
    ) -> ReplyStream:
        """A helper that streams one reply: numbers ``seq`` from 0, splits long
        deltas, and posts the final message with the same ``stream_id``::

            with client.reply_stream(session_id) as reply:
                for piece in model_output:
                    reply.send(piece)
                answer = reply.finish(text, metadata={"model": "gpt-4o-mini"})
        """
        return ReplyStream(self, session_id, stream_id or f"stream-{uuid.uuid4().hex}", typing)

    # --- documents ---------------------------------------------------------------

    def claim_document(self, *, worker: str | None = None) -> Claim | None:
        """Lease the oldest pending document (``documents:process``); ``None`` when
        there is nothing to do (204): poll again in a few seconds. ``worker``
        (host, pid) is recorded with the lease for diagnosis."""
        response = self._send(
            "POST",
            "/api/documents/jobs/claim/",
            json={"worker": worker} if worker is not None else {},
        )
        if response.status_code == 204 or not response.content:
            return None
        return Claim.from_json(response.json())

    def _download_url(self, document: int | Claim) -> str:
        if isinstance(document, int):
            return f"/api/documents/{document}/file/"
        # The claim's download_url is built from the Host the server saw; send
        # the token only to the server we were configured with.
        given, ours = httpx.URL(document.download_url), httpx.URL(self.base_url)
        if (given.scheme, given.host, given.port) == (ours.scheme, ours.host, ours.port):
            return document.download_url
        return f"/api/documents/{document.id}/file/"

    def download_document(
        self, document: int | Claim, file: IO[bytes], *, chunk_size: int = 64 * 1024
    ) -> int:
        """Stream the original file of a document (an id, or a :class:`Claim`)
        into ``file`` (opened for binary writing); returns the bytes written.

        The body is never held in memory whole. Failures before the body starts
        are retried as a GET; a connection that breaks during the body raises
        ``TransportError`` (what was written stays: truncate before retrying)."""
        response = self._send("GET", self._download_url(document), stream=True)
        written = 0
        try:
            for chunk in response.iter_bytes(chunk_size):
                file.write(chunk)
                written += len(chunk)
        except httpx.TransportError as exc:
            raise TransportError(f"download of document broke: {exc!r}") from exc
        finally:
            response.close()
        return written

    def report_document(
        self,
        document_id: int,
        *,
        lease_id: str,
        status: Literal["processing", "processed", "failed"],
        chunk_count: int | None = None,
        page_count: int | None = None,
        error: str | None = None,
    ) -> Document:
        """Report on a leased document (``documents:process``): ``processing``
        renews the lease, ``processed`` (with ``chunk_count``) and ``failed``
        (with ``error``, shown to the owner) finish it. ``ConflictError`` with
        code ``lease_expired`` or ``invalid_transition`` and ``NotFoundError`` (the
        owner deleted it) mean: stop working on it."""
        body: dict[str, Any] = {"status": status, "lease_id": lease_id}
        if chunk_count is not None:
            body["chunk_count"] = chunk_count
        if page_count is not None:
            body["page_count"] = page_count
        if error is not None:
            body["error"] = error
        return Document.from_json(
            self._json(
                "POST",
                f"/api/documents/{document_id}/status/",
                json=body,
                retry_safe=status == "processing",  # a heartbeat only renews the lease
            )
        )

    def heartbeat(self, claim: Claim) -> Document:
        """Renew the claim's lease for the server's full lease time."""
        return self.report_document(claim.id, lease_id=claim.lease_id, status="processing")

    def complete_document(
        self, claim: Claim, *, chunk_count: int, page_count: int | None = None
    ) -> Document:
        """Finish the claim as ``processed`` (``page_count`` replaces the upload's count)."""
        return self.report_document(
            claim.id,
            lease_id=claim.lease_id,
            status="processed",
            chunk_count=chunk_count,
            page_count=page_count,
        )

    def fail_document(self, claim: Claim, error: str) -> Document:
        """Finish the claim as ``failed`` (final until the owner asks to reprocess)."""
        return self.report_document(claim.id, lease_id=claim.lease_id, status="failed", error=error)

    def list_deletions(
        self,
        *,
        since: datetime | str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> DeletionPage:
        """One page of the deletions feed: documents deleted strictly after ``since``
        (an aware datetime or ISO 8601), oldest first (``documents:process``)."""
        params = _params(since=since, page=page, page_size=page_size)
        return DeletionPage.from_json(self._json("GET", "/api/documents/deletions/", params=params))

    def iter_deletions(
        self, *, since: datetime | str | None = None, page_size: int = 100
    ) -> Iterator[Deletion]:
        """Every deletion after ``since``, oldest first, page after page. For a
        polling loop that keeps its cursor use :meth:`deletions_feed`."""
        page = 1
        while True:
            result = self.list_deletions(since=since, page=page, page_size=page_size)
            yield from result.results
            if not result.has_next:
                return
            page += 1

    def deletions_feed(
        self,
        *,
        since: datetime | None = None,
        overlap: timedelta = timedelta(minutes=1),
        page_size: int = 100,
    ) -> DeletionsFeed:
        """A cursor over the deletions feed: each :meth:`DeletionsFeed.poll` returns
        the deletions not returned yet. It asks from ``overlap`` before the newest
        ``deleted_at`` it handled (a deletion's time is taken just before its
        commit, so one may appear late) and drops what it already returned."""
        return DeletionsFeed(self, since=since, overlap=overlap, page_size=page_size)

    # --- keys, usage, budgets ----------------------------------------------------

    def get_api_key(
        self, user_id: int, *, provider: str | None = None, key_id: int | None = None
    ) -> KeyGrant:
        """A user's decrypted provider key (``keys:read``): the default key of
        ``provider`` (the server's default is ``openai``), or the key ``key_id``.
        Every read is logged by the server. No usable key: ``NotFoundError`` with
        code ``api_key_not_set``."""
        params = _params(provider=provider, key_id=key_id)
        return KeyGrant.from_json(
            self._json("GET", f"/api/users/{user_id}/api-key/", params=params)
        )

    def record_usage(
        self,
        *,
        user_id: int,
        provider: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        idempotency_key: str,
        key_id: int | None = None,
        session_id: str | None = None,
        message_id: int | None = None,
        cost: float | None = None,
    ) -> UsageRecord:
        """Record one model call in the user's usage ledger (``usage:write``).

        ``idempotency_key`` is required: derive it from the call (``f"{run_id}:llm-1"``)
        so a retry, even from a restarted worker, counts once; the answer is then
        the first record with ``created`` False. ``cost`` in USD, or omitted to
        price the call from the server's table. A used-up budget is a
        ``ConflictError`` (``budget_exceeded``); a key reused for another call
        ``idempotency_key_reused`` (``context["record_id"]``). A message posted
        with ``metadata.usage`` already recorded its call: do not record it twice.
        """
        body: dict[str, Any] = {
            "user_id": user_id,
            "provider": provider,
            "model": model,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
        }
        optional = {
            "key_id": key_id,
            "session_id": session_id,
            "message_id": message_id,
            "cost": None if cost is None else float(cost),
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        response = self._send(
            "POST", "/api/usage/", json=body, headers={"Idempotency-Key": idempotency_key}
        )
        return UsageRecord.from_json(response.json(), created=response.status_code == 201)

    def get_budget(self, user_id: int, *, key_id: int | None = None) -> Budget:
        """Whether the user (and ``key_id``, the key the call will use) may still
        spend this month (``usage:write``): check ``allowed`` before calling a model."""
        return Budget.from_json(
            self._json("GET", f"/api/users/{user_id}/budget/", params=_params(key_id=key_id))
        )


class ReplyStream:
    """Streams one assistant reply to a session: ``assistant.typing``, numbered
    ``assistant.delta`` pieces, then the final message with the same ``stream_id``.

    As a context manager it sends ``typing: true`` on entry; leaving the block
    by an exception before :meth:`finish` sends ``typing: false`` (best effort),
    so the browsers stop showing the reply as in progress.
    """

    def __init__(self, client: ChatbotClient, session_id: str, stream_id: str, typing: bool):
        self.client = client
        self.session_id = session_id
        self.stream_id = stream_id
        self.seq = 0
        self.finished: Message | None = None
        self._typing = typing

    def start(self) -> None:
        """Tell the session's sockets the assistant is generating."""
        if self._typing:
            self.client.stream_typing(self.session_id, self.stream_id, True)

    def send(self, delta: str) -> int:
        """Relay ``delta`` (split into pieces the relay takes); returns the next ``seq``."""
        for start in range(0, len(delta), STREAM_DELTA_MAX_LENGTH):
            piece = delta[start : start + STREAM_DELTA_MAX_LENGTH]
            self.client.stream_delta(self.session_id, self.stream_id, piece, seq=self.seq)
            self.seq += 1
        return self.seq

    def finish(
        self,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        client_message_id: str | None = None,
        key_id: int | None = None,
    ) -> Message:
        """Post the complete reply as an assistant message carrying this
        ``stream_id``; its ``message.created`` event replaces the streamed text.
        The idempotency key defaults to ``"<stream_id>:final"``, so finishing
        twice (a retry) stores one message."""
        self.finished = self.client.post_message(
            self.session_id,
            role="assistant",
            content=content,
            metadata=metadata,
            stream_id=self.stream_id,
            client_message_id=client_message_id or f"{self.stream_id}:final",
            key_id=key_id,
        )
        return self.finished

    def cancel(self) -> None:
        """Tell the sockets the reply stopped (``typing: false``) without a message."""
        self.client.stream_typing(self.session_id, self.stream_id, False)

    def __enter__(self) -> ReplyStream:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None and self.finished is None and self._typing:
            try:
                self.cancel()
            except Exception:  # the original error matters more
                logger.warning("could not send typing: false for %s", self.stream_id)


class DeletionsFeed:
    """A polling cursor over ``GET /api/documents/deletions/`` (see
    :meth:`ChatbotClient.deletions_feed`). ``cursor`` is the newest
    ``deleted_at`` returned so far: persist it, and start the next feed from it."""

    def __init__(
        self,
        client: ChatbotClient,
        *,
        since: datetime | None,
        overlap: timedelta,
        page_size: int,
    ) -> None:
        self.client = client
        self.cursor = since
        self.overlap = overlap
        self.page_size = page_size
        self._seen: set[tuple[int, datetime]] = set()

    def poll(self) -> list[Deletion]:
        """The deletions not returned before, oldest first."""
        since = None if self.cursor is None else self.cursor - self.overlap
        fresh = [
            deletion
            for deletion in self.client.iter_deletions(since=since, page_size=self.page_size)
            if (deletion.document_id, deletion.deleted_at) not in self._seen
        ]
        for deletion in fresh:
            self._seen.add((deletion.document_id, deletion.deleted_at))
            if self.cursor is None or deletion.deleted_at > self.cursor:
                self.cursor = deletion.deleted_at
        if self.cursor is not None:  # forget what the next window can no longer return
            horizon = self.cursor - self.overlap
            self._seen = {seen for seen in self._seen if seen[1] > horizon}
        return fresh
