"""Reading the conversations of an uploaded file, before anything is written.

Three formats (``ImportFormat``), told apart by their content unless the
uploader names one:

``chatbot``
    This service's lossless export (``docs/export-format.md``): one
    ``{"format": "chatbot.conversation", "version": 1, ...}`` object, or a
    list of them. Everything comes back: the tree, trashed messages, earlier
    versions, metadata, feedback, timestamps.
``chatgpt``
    ChatGPT's data export, ``conversations.json``: a list of conversations,
    each a tree of nodes (``mapping``, linked by ``parent``) whose
    ``current_node`` is the tip of the branch shown last.
``openwebui``
    Open WebUI's chat export: a list of chats, each a tree of messages
    (``chat.history.messages``, linked by ``parentId``) whose
    ``chat.history.currentId`` is the tip of the shown branch.

``read_conversations`` parses and checks the whole file and returns its
conversations in one shape (``Conversation``), or raises a single
``ValidationError`` naming each problem by where it is in the file
(``[2].mapping.<node id>.parent``; at most ``MAX_ERRORS`` of them): JSON that
does not parse, a wrong shape, an unknown role, content over
``CHAT_MESSAGE_MAX_LENGTH``, metadata the API would refuse, a parent that is
not in the conversation, a cycle. Nothing here touches the database.

What a foreign format holds that a session cannot (ChatGPT's tool calls and
outputs, hidden system messages, images and other non-text parts, empty
messages) is skipped and listed in ``Conversation.skipped``; the replies of a
skipped message hang from its nearest kept ancestor, so no branch is lost.
"""

from __future__ import annotations

import heapq
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from rest_framework.exceptions import ParseError

from chat_history.models import (
    CLIENT_MESSAGE_ID_MAX_LENGTH,
    FEEDBACK_COMMENT_MAX_LENGTH,
    FEEDBACK_REASON_MAX_LENGTH,
    FEEDBACK_REASONS_MAX,
    INSTRUCTIONS_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    ImportFormat,
    Rating,
    Role,
    validate_message_content,
    validate_message_metadata,
)
from core.parsers import loads

# The lossless format's name and the versions this server reads.
LOSSLESS_FORMAT = "chatbot.conversation"
LOSSLESS_VERSION = 1
MAX_ERRORS = 20
TITLE_FROM_MESSAGE_LENGTH = 60
# Timestamps a datetime can hold (epoch seconds, up to the year 9999).
_MAX_EPOCH = 253_402_300_799


# --- The one shape every format is read into ----------------------------------


@dataclass
class Version:
    """A content a message had before an edit (oldest first)."""

    content: str
    written_at: datetime
    edited_at: datetime
    edited_by: str
    edited_by_owner: bool


@dataclass
class Feedback:
    rating: int
    comment: str
    reasons: list[str]
    created_at: datetime
    updated_at: datetime


@dataclass
class Message:
    key: str  # its id in the file
    parent_key: str | None
    role: str
    content: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    client_message_id: str | None = None
    deleted_at: datetime | None = None
    versions: list[Version] = field(default_factory=list)
    feedback: Feedback | None = None
    # Where it goes among the messages that may be inserted next (time, file order).
    order: tuple[Any, ...] = ()


@dataclass
class Skipped:
    """Something of the file that was not imported, and why."""

    source_id: str  # the conversation
    title: str
    item: str | None  # a message of it (None: the whole conversation)
    reason: str

    def data(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "title": self.title,
            "item": self.item,
            "reason": self.reason,
        }


@dataclass
class Conversation:
    source_id: str
    import_key: str  # ChatSession.import_key: the same conversation is imported once
    title: str
    created_at: datetime
    updated_at: datetime
    # Parents before their replies: the order to insert them in, so that ids
    # grow along every path.
    messages: list[Message]
    active_leaf_key: str | None
    instructions: str = ""
    archived: bool = False
    pinned: bool = False
    skipped: list[Skipped] = field(default_factory=list)
    importable: bool = True  # False: nothing in it to import (``skipped`` says why)


@dataclass
class ReadResult:
    format: str
    conversations: list[Conversation]


class _Problems:
    """The errors found so far, by their path in the file."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.setdefault(path.lstrip(".") or "file", []).append(message)

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_ERRORS

    def raise_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def read_conversations(data: bytes, *, format: str | None = None) -> ReadResult:
    """Every conversation of an uploaded file, checked; ``ValidationError`` if
    anything in it is wrong (nothing is returned then). ``format`` (an
    ``ImportFormat``) skips the detection."""
    try:
        document = loads(data)
    except ParseError as exc:  # not JSON, or nested too deeply
        raise ValidationError({"file": [f"Not a JSON file: {exc.detail}"]}) from None
    detected = format or detect_format(document)
    items = document if isinstance(document, list) else [document]
    if not items:
        raise ValidationError({"file": ["The file holds no conversations."]})
    problems = _Problems()
    reader = _READERS[detected]
    conversations = []
    for index, item in enumerate(items):
        path = f"[{index}]" if isinstance(document, list) else ""
        if not isinstance(item, dict):
            problems.add(path, "Must be a JSON object (a conversation).")
            continue
        conversation = reader(item, path, problems)
        if conversation is not None:
            conversations.append(conversation)
        if problems.full:
            break
    problems.raise_any()
    return ReadResult(detected, conversations)


def detect_format(document: Any) -> str:
    items = document if isinstance(document, list) else [document]
    first = next((item for item in items if isinstance(item, dict)), None)
    if first is not None:
        if first.get("format") == LOSSLESS_FORMAT:
            return ImportFormat.CHATBOT
        if "mapping" in first:
            return ImportFormat.CHATGPT
        if isinstance(first.get("chat"), dict):
            return ImportFormat.OPENWEBUI
    if isinstance(document, list) and not document:
        raise ValidationError({"file": ["The file holds no conversations."]})
    raise ValidationError(
        {
            "file": [
                "Not a format this server imports: expected this service's export "
                f'("format": "{LOSSLESS_FORMAT}"), a ChatGPT conversations.json or an '
                "Open WebUI chat export."
            ]
        }
    )


# --- Checks of single values -----------------------------------------------------


class _InvalidValueError(Exception):
    """A value failed its check; ``_Problems`` already has the message."""


def _get(obj: dict, key: str, path: str, problems: _Problems, check: Callable, **kwargs) -> Any:
    return check(obj.get(key), f"{path}.{key}", problems, **kwargs)


def _of_type(kind: type, name: str) -> Callable[..., Any]:
    """A check that a value is a ``kind`` (``name`` in messages); None passes
    when not ``required``."""

    def check(value: Any, path: str, problems: _Problems, *, required: bool = True) -> Any:
        if value is None and not required:
            return None
        if not isinstance(value, kind):
            problems.add(path, f"Required ({name})." if value is None else f"Must be {name}.")
            raise _InvalidValueError
        return value

    return check


_object = _of_type(dict, "an object")
_array = _of_type(list, "an array")
_text = _of_type(str, "a string")


def _string(
    value: Any,
    path: str,
    problems: _Problems,
    *,
    required: bool = True,
    max_length: int | None = None,
) -> Any:
    value = _text(value, path, problems, required=required)
    if value is not None and max_length is not None and len(value) > max_length:
        problems.add(path, f"Must be at most {max_length} characters (it has {len(value)}).")
        raise _InvalidValueError
    return value


def _boolean(value: Any, path: str, problems: _Problems, *, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.add(path, "Must be true or false.")
        raise _InvalidValueError
    return value


def _iso_time(value: Any, path: str, problems: _Problems, *, required: bool = True) -> Any:
    """An ISO 8601 date and time with its offset (``...Z``)."""
    if value is None and not required:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems.add(path, "Must be an ISO 8601 date and time with a time zone.")
        raise _InvalidValueError
    return parsed.astimezone(UTC)


def _epoch_time(value: Any, path: str, problems: _Problems) -> datetime | None:
    """Seconds since 1970 (a number; milliseconds are recognised by their size)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.add(path, "Must be a number of seconds since 1970, or null.")
        raise _InvalidValueError
    seconds = value / 1000 if value > _MAX_EPOCH else value
    if not 0 <= seconds <= _MAX_EPOCH:
        problems.add(path, "Is not a time this server can store.")
        raise _InvalidValueError
    return datetime.fromtimestamp(seconds, tz=UTC)


def _role(value: Any, path: str, problems: _Problems, *, known: Iterable[str]) -> str:
    known = tuple(known)
    if value not in known:
        problems.add(path, f"Unknown role {value!r}: expected one of {', '.join(known)}.")
        raise _InvalidValueError
    return value


def _content(value: Any, path: str, problems: _Problems) -> str:
    text = _string(value, path, problems)
    _django_check(validate_message_content, text, path, problems)
    return text


def _metadata(value: Any, path: str, problems: _Problems) -> dict[str, Any]:
    value = {} if value is None else value
    _django_check(validate_message_metadata, value, path, problems)
    return value


def _django_check(validator: Callable[[Any], None], value: Any, path: str, problems) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        for message in exc.messages:
            problems.add(path, message)
        raise _InvalidValueError from None


def _checked(problems: _Problems, read: Callable[[], Any]) -> tuple[Any, bool]:
    """``read()``, and whether it passed its checks."""
    try:
        return read(), True
    except _InvalidValueError:
        return None, False


def _nodes_checked(
    raw_nodes: dict[str, Any],
    where: str,
    problems: _Problems,
    read: Callable[[str, Any, str, _Problems], Any],
) -> tuple[list[Any], bool]:
    """Every node of a foreign tree read by ``read``, and whether all passed;
    stops early once ``problems`` is full."""
    nodes, ok = [], True
    for key, raw in raw_nodes.items():
        node, fine = _checked(problems, lambda: read(key, raw, f"{where}.{key}", problems))  # noqa: B023
        ok = ok and fine
        if fine:
            nodes.append(node)
        if problems.full:
            break
    return nodes, ok


# --- The tree -------------------------------------------------------------------


def _find_cycle(parents: dict[str, str | None]) -> str | None:
    """A node whose parent links lead back to itself, if any (links to
    unknown nodes are someone else's error)."""
    state: dict[str, int] = {}  # 1: on the current walk, 2: known to reach a root
    for start in parents:
        walk = []
        node: str | None = start
        while node is not None and node in parents and state.get(node) != 2:
            if state.get(node) == 1:
                return node
            state[node] = 1
            walk.append(node)
            node = parents[node]
        for visited in walk:
            state[visited] = 2
    return None


def _tree_order(messages: list[Message]) -> list[Message]:
    """Parents before their replies; otherwise by ``Message.order`` (so a
    later regeneration gets a larger id than an earlier one)."""
    replies: dict[str | None, list[Message]] = {}
    for message in messages:
        replies.setdefault(message.parent_key, []).append(message)
    ready = [(message.order, n, message) for n, message in enumerate(replies.get(None, []))]
    heapq.heapify(ready)
    ordered: list[Message] = []
    counter = len(messages)
    while ready:
        _, _, message = heapq.heappop(ready)
        ordered.append(message)
        for reply in replies.get(message.key, []):
            counter += 1
            heapq.heappush(ready, (reply.order, counter, reply))
    return ordered


def _check_tree(messages: list[Message], path: str, problems: _Problems) -> bool:
    keys = {message.key for message in messages}
    ok = True
    for message in messages:
        if message.parent_key is not None and message.parent_key not in keys:
            problems.add(
                f"{path}.{message.key}",
                f"Its parent {message.parent_key!r} is not in this conversation.",
            )
            ok = False
    if ok and (node := _find_cycle({m.key: m.parent_key for m in messages})) is not None:
        problems.add(f"{path}.{node}", "Its parent links form a cycle.")
        ok = False
    return ok


def _kept_ancestors(
    parents: dict[str, str | None], kept: set[str]
) -> Callable[[str | None], str | None]:
    """``nearest(key)``: ``key`` if it is kept, else its nearest kept ancestor
    (None: none is). The links must be free of cycles."""
    memo: dict[str, str | None] = {}

    def nearest(key: str | None) -> str | None:
        walk = []
        while key is not None and key not in kept and key not in memo:
            walk.append(key)
            key = parents.get(key)
        found = key if key is None or key in kept else memo[key]
        for visited in walk:
            memo[visited] = found
        return found

    return nearest


def _default_title(title: str, messages: list[Message]) -> str:
    """The file's title, or one taken from the first user message (as a new
    session takes it)."""
    title = " ".join(title.split())[:TITLE_MAX_LENGTH]
    if title:
        return title
    first = next((m for m in messages if m.role == Role.USER), None)
    if first is None:
        return ""
    flat = " ".join(first.content[: TITLE_FROM_MESSAGE_LENGTH * 4].split())
    if len(flat) <= TITLE_FROM_MESSAGE_LENGTH:
        return flat
    return flat[: TITLE_FROM_MESSAGE_LENGTH - 1].rstrip() + "…"


# --- This service's lossless export --------------------------------------------


def _read_chatbot(item: dict, path: str, problems: _Problems) -> Conversation | None:
    version = item.get("version")
    if version != LOSSLESS_VERSION:
        problems.add(
            f"{path}.version",
            f"Unsupported version {version!r}: this server reads version {LOSSLESS_VERSION}.",
        )
        return None
    if item.get("format") != LOSSLESS_FORMAT:
        problems.add(f"{path}.format", f'Must be "{LOSSLESS_FORMAT}".')
        return None
    session, ok = _checked(
        problems, lambda: _object(item.get("session"), f"{path}.session", problems)
    )
    raw_messages, ok_messages = _checked(
        problems, lambda: _array(item.get("messages"), f"{path}.messages", problems)
    )
    if not (ok and ok_messages):
        return None
    header, ok = _checked(problems, lambda: _chatbot_session(session, f"{path}.session", problems))
    messages: list[Message] = []
    seen_keys: set[str] = set()
    seen_client_ids: set[str] = set()
    for index, raw in enumerate(raw_messages):
        where = f"{path}.messages[{index}]"
        message, fine = _checked(problems, lambda: _chatbot_message(raw, where, problems))  # noqa: B023
        if not fine:
            ok = False
            continue
        if message.key in seen_keys:
            problems.add(f"{where}.id", f"Another message has the id {message.key}.")
            ok = False
        if message.client_message_id is not None:
            if message.client_message_id in seen_client_ids:
                problems.add(f"{where}.client_message_id", "Another message has this key.")
                ok = False
            seen_client_ids.add(message.client_message_id)
        seen_keys.add(message.key)
        messages.append(message)
        if problems.full:
            return None
    if not ok or not _check_tree(messages, f"{path}.messages", problems):
        return None
    leaf = header["active_leaf_id"]
    if leaf is not None and str(leaf) not in seen_keys:
        problems.add(f"{path}.session.active_leaf_id", f"No message has the id {leaf}.")
        return None
    return Conversation(
        source_id=header["session_id"],
        import_key=f"chatbot:{header['session_id']}",
        title=header["title"],
        instructions=header["instructions"],
        archived=header["archived"],
        pinned=header["pinned"],
        created_at=header["created_at"],
        updated_at=header["updated_at"],
        messages=_tree_order(messages),
        active_leaf_key=None if leaf is None else str(leaf),
    )


def _chatbot_session(session: dict, path: str, problems: _Problems) -> dict[str, Any]:
    session_id = _get(session, "session_id", path, problems, _string)
    try:
        session_id = str(uuid.UUID(session_id))
    except ValueError:
        problems.add(f"{path}.session_id", "Must be a UUID.")
        raise _InvalidValueError from None
    leaf = session.get("active_leaf_id")
    if leaf is not None and (isinstance(leaf, bool) or not isinstance(leaf, int)):
        problems.add(f"{path}.active_leaf_id", "Must be a message id or null.")
        raise _InvalidValueError
    return {
        "session_id": session_id,
        "title": _get(session, "title", path, problems, _string, max_length=TITLE_MAX_LENGTH),
        "instructions": _get(
            session, "instructions", path, problems, _string, max_length=INSTRUCTIONS_MAX_LENGTH
        ),
        "archived": _get(session, "archived", path, problems, _boolean),
        "pinned": _get(session, "pinned", path, problems, _boolean),
        "active_leaf_id": leaf,
        "created_at": _get(session, "created_at", path, problems, _iso_time),
        "updated_at": _get(session, "updated_at", path, problems, _iso_time),
    }


def _message_id(value: Any, path: str, problems: _Problems, *, required: bool = True) -> Any:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.add(path, "Must be a message id (a positive integer).")
        raise _InvalidValueError
    return str(value)


def _chatbot_message(raw: Any, path: str, problems: _Problems) -> Message:
    raw = _object(raw, path, problems)
    client_message_id = _get(
        raw,
        "client_message_id",
        path,
        problems,
        _string,
        required=False,
        max_length=CLIENT_MESSAGE_ID_MAX_LENGTH,
    )
    return Message(
        key=_get(raw, "id", path, problems, _message_id),
        parent_key=_get(raw, "parent_id", path, problems, _message_id, required=False),
        role=_get(raw, "role", path, problems, _role, known=Role.values),
        content=_get(raw, "content", path, problems, _content),
        metadata=_get(raw, "metadata", path, problems, _metadata),
        client_message_id=client_message_id,
        created_at=_get(raw, "created_at", path, problems, _iso_time),
        updated_at=_get(raw, "updated_at", path, problems, _iso_time),
        deleted_at=_get(raw, "deleted_at", path, problems, _iso_time, required=False),
        versions=_chatbot_versions(raw.get("versions"), f"{path}.versions", problems),
        feedback=_chatbot_feedback(raw.get("feedback"), f"{path}.feedback", problems),
        order=(int(raw["id"]),),
    )


def _chatbot_versions(value: Any, path: str, problems: _Problems) -> list[Version]:
    versions = []
    for index, raw in enumerate(_array(value, path, problems, required=False) or []):
        where = f"{path}[{index}]"
        raw = _object(raw, where, problems)
        if raw.get("version") != index + 1:
            problems.add(
                f"{where}.version", f"Must be {index + 1} (versions are numbered 1, 2...)."
            )
            raise _InvalidValueError
        versions.append(
            Version(
                content=_get(raw, "content", where, problems, _content),
                written_at=_get(raw, "written_at", where, problems, _iso_time),
                edited_at=_get(raw, "edited_at", where, problems, _iso_time),
                edited_by=_get(raw, "edited_by", where, problems, _string, max_length=160),
                edited_by_owner=_get(raw, "edited_by_owner", where, problems, _boolean),
            )
        )
    return versions


def _chatbot_feedback(value: Any, path: str, problems: _Problems) -> Feedback | None:
    raw = _object(value, path, problems, required=False)
    if raw is None:
        return None
    rating = raw.get("rating")
    if isinstance(rating, bool) or rating not in Rating.values:
        problems.add(f"{path}.rating", "Must be -1 or 1.")
        raise _InvalidValueError
    reasons = _get(raw, "reasons", path, problems, _array, required=False) or []
    if len(reasons) > FEEDBACK_REASONS_MAX:
        problems.add(f"{path}.reasons", f"At most {FEEDBACK_REASONS_MAX} reasons.")
        raise _InvalidValueError
    for index, reason in enumerate(reasons):
        _string(reason, f"{path}.reasons[{index}]", problems, max_length=FEEDBACK_REASON_MAX_LENGTH)
    return Feedback(
        rating=rating,
        comment=_get(
            raw, "comment", path, problems, _string, max_length=FEEDBACK_COMMENT_MAX_LENGTH
        ),
        reasons=reasons,
        created_at=_get(raw, "created_at", path, problems, _iso_time),
        updated_at=_get(raw, "updated_at", path, problems, _iso_time),
    )


# --- Shared by the foreign formats ---------------------------------------------


@dataclass
class _Node:
    """A message of a foreign format, before it is kept or skipped."""

    key: str
    parent_key: str | None
    message: Message | None  # None: skipped
    skip_reason: str | None = None  # why (None: a structural node, not worth a mention)


def _foreign_conversation(
    *,
    nodes: list[_Node],
    path: str,
    problems: _Problems,
    source: str,
    source_id: str,
    title: str,
    created_at: datetime | None,
    updated_at: datetime | None,
    current_key: str | None,
    instructions: str = "",
    archived: bool = False,
    pinned: bool = False,
) -> Conversation | None:
    """The kept messages of a checked tree, each hanging from its nearest kept
    ancestor; the active leaf is ``current_key`` (or its nearest kept ancestor),
    else the newest message."""
    parents = {node.key: node.parent_key for node in nodes}
    for node in nodes:
        if node.parent_key is not None and node.parent_key not in parents:
            problems.add(
                f"{path}.{node.key}", f"Its parent {node.parent_key!r} is not in this conversation."
            )
            return None
    if (cycle := _find_cycle(parents)) is not None:
        problems.add(f"{path}.{cycle}", "Its parent links form a cycle.")
        return None
    kept = {node.key for node in nodes if node.message is not None}
    nearest = _kept_ancestors(parents, kept)
    messages = []
    for node in nodes:
        if node.message is not None:
            node.message.parent_key = nearest(node.parent_key)
            messages.append(node.message)
    ordered = _tree_order(messages)
    _inherit_missing_times(ordered, created_at)
    title = _default_title(title, ordered)
    skipped = [
        Skipped(source_id, title, node.key, node.skip_reason) for node in nodes if node.skip_reason
    ]
    if not ordered:
        skipped.append(Skipped(source_id, title, None, "No text messages to import."))
        return Conversation(
            source_id=source_id,
            import_key=f"{source}:{source_id}",
            title=title,
            created_at=created_at or _EPOCH,
            updated_at=updated_at or created_at or _EPOCH,
            messages=[],
            active_leaf_key=None,
            skipped=skipped,
            importable=False,
        )
    leaf = nearest(current_key) if current_key is not None else None
    if leaf is None:
        leaf = max(ordered, key=lambda m: m.order).key
    first_time, last_time = ordered[0].created_at, max(m.updated_at for m in ordered)
    return Conversation(
        source_id=source_id,
        import_key=f"{source}:{source_id}",
        title=title,
        instructions=instructions,
        archived=archived,
        pinned=pinned,
        created_at=created_at or first_time,
        updated_at=updated_at or last_time,
        messages=ordered,
        active_leaf_key=leaf,
        skipped=skipped,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNKNOWN_TIME = datetime.max.replace(tzinfo=UTC)  # placeholder, replaced below


def _inherit_missing_times(messages: list[Message], fallback: datetime | None) -> None:
    """A message without a time takes its parent's (or the conversation's)."""
    by_key = {message.key: message for message in messages}
    for message in messages:  # parents first
        if message.created_at is _UNKNOWN_TIME:
            parent = by_key.get(message.parent_key) if message.parent_key else None
            message.created_at = parent.created_at if parent else (fallback or _EPOCH)
        if message.updated_at is _UNKNOWN_TIME:
            message.updated_at = message.created_at


def _source_id(value: Any, path: str, problems: _Problems) -> str:
    text = _string(value, path, problems, max_length=150)
    if not text.strip():
        problems.add(path, "May not be blank.")
        raise _InvalidValueError
    return text


def _import_metadata(source: str, key: str, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"import": {"source": str(source), "id": key}}
    metadata.update({name: value for name, value in extra.items() if value is not None})
    return metadata


# --- ChatGPT's conversations.json -------------------------------------------------

_CHATGPT_ROLES = ("user", "assistant", "system", "tool")
_CHATGPT_TEXT_TYPES = ("text", "multimodal_text")


def _read_chatgpt(item: dict, path: str, problems: _Problems) -> Conversation | None:
    def header() -> dict[str, Any]:
        return {
            "id": _source_id(item.get("conversation_id") or item.get("id"), f"{path}.id", problems),
            "title": _get(item, "title", path, problems, _string, required=False) or "",
            "created_at": _epoch_time(item.get("create_time"), f"{path}.create_time", problems),
            "updated_at": _epoch_time(item.get("update_time"), f"{path}.update_time", problems),
            "mapping": _get(item, "mapping", path, problems, _object),
            "current": _get(item, "current_node", path, problems, _string, required=False),
        }

    conversation, ok = _checked(problems, header)
    if not ok:
        return None
    mapping = conversation["mapping"]
    nodes, ok = _nodes_checked(mapping, f"{path}.mapping", problems, _chatgpt_node)
    if problems.full:
        return None
    current = conversation["current"]
    if current is not None and current not in mapping:
        problems.add(f"{path}.current_node", f"No node {current!r} in the mapping.")
        return None
    if not ok:
        return None
    return _foreign_conversation(
        nodes=nodes,
        path=f"{path}.mapping",
        problems=problems,
        source=ImportFormat.CHATGPT,
        source_id=conversation["id"],
        title=conversation["title"],
        created_at=conversation["created_at"],
        updated_at=conversation["updated_at"],
        current_key=current,
    )


def _chatgpt_node(key: str, raw: Any, path: str, problems: _Problems) -> _Node:
    raw = _object(raw, path, problems)
    parent = _get(raw, "parent", path, problems, _string, required=False)
    message = _get(raw, "message", path, problems, _object, required=False)
    if message is None:
        return _Node(key, parent, None)  # the tree's root placeholder
    author = _get(message, "author", f"{path}.message", problems, _object)
    role = _role(author.get("role"), f"{path}.message.author.role", problems, known=_CHATGPT_ROLES)
    meta = _get(message, "metadata", f"{path}.message", problems, _object, required=False) or {}
    created = _epoch_time(message.get("create_time"), f"{path}.message.create_time", problems)
    updated = _epoch_time(message.get("update_time"), f"{path}.message.update_time", problems)
    content = _get(message, "content", f"{path}.message", problems, _object)
    content_type = _get(content, "content_type", f"{path}.message.content", problems, _string)
    if role == "tool":
        return _Node(key, parent, None, "A tool's output (not a chat message).")
    if meta.get("is_visually_hidden_from_conversation"):
        return _Node(key, parent, None, f"A hidden {role} message.")
    if message.get("recipient") not in (None, "all"):
        return _Node(key, parent, None, f"A call to the {message['recipient']} tool.")
    if content_type not in _CHATGPT_TEXT_TYPES:
        return _Node(key, parent, None, f"Content of type {content_type!r} is not text.")
    parts = _get(content, "parts", f"{path}.message.content", problems, _array)
    texts = [part for part in parts if isinstance(part, str)]
    text = "\n\n".join(part for part in texts if part.strip())
    if not text.strip():
        reason = "No text (only attachments)." if parts and not texts else "An empty message."
        return _Node(key, parent, None, reason)
    text = _content(text, f"{path}.message.content.parts", problems)
    order_time = created.timestamp() if created else math.inf
    return _Node(
        key,
        parent,
        Message(
            key=key,
            parent_key=parent,
            role=role,
            content=text,
            created_at=created or _UNKNOWN_TIME,
            updated_at=updated or created or _UNKNOWN_TIME,
            metadata=_import_metadata(
                ImportFormat.CHATGPT,
                key,
                model=meta.get("model_slug") if isinstance(meta.get("model_slug"), str) else None,
                dropped_parts=(len(parts) - len(texts)) or None,
            ),
            order=(order_time,),
        ),
        f"{len(parts) - len(texts)} non-text part(s) dropped, the text kept."
        if len(parts) > len(texts)
        else None,
    )


# --- Open WebUI's chat export --------------------------------------------------------

_OPENWEBUI_ROLES = ("user", "assistant", "system")


def _read_openwebui(item: dict, path: str, problems: _Problems) -> Conversation | None:
    def header() -> dict[str, Any]:
        chat = _get(item, "chat", path, problems, _object)
        params = _get(chat, "params", f"{path}.chat", problems, _object, required=False) or {}
        history = _get(chat, "history", f"{path}.chat", problems, _object, required=False)
        return {
            "id": _source_id(item.get("id"), f"{path}.id", problems),
            "title": _get(item, "title", path, problems, _string, required=False)
            or chat.get("title")
            or "",
            "created_at": _epoch_time(item.get("created_at"), f"{path}.created_at", problems),
            "updated_at": _epoch_time(item.get("updated_at"), f"{path}.updated_at", problems),
            "archived": _get(item, "archived", path, problems, _boolean),
            "pinned": _get(item, "pinned", path, problems, _boolean),
            "instructions": _get(
                params,
                "system",
                f"{path}.chat.params",
                problems,
                _string,
                required=False,
                max_length=INSTRUCTIONS_MAX_LENGTH,
            )
            or "",
            "history": history,
            "list": None if history is not None else chat.get("messages"),
        }

    chat, ok = _checked(problems, header)
    if not ok:
        return None
    history = chat["history"]
    where = f"{path}.chat.history.messages"
    if history is not None:
        raw_nodes, ok = _checked(
            problems, lambda: _object(history.get("messages"), where, problems)
        )
        current = history.get("currentId")
    else:  # an old export without the tree: the message list is one branch
        where = f"{path}.chat.messages"
        listed, ok = _checked(problems, lambda: _array(chat["list"], where, problems))
        raw_nodes = _chain(listed) if ok else {}
        current = None
    if not ok:
        return None
    nodes, ok = _nodes_checked(raw_nodes, where, problems, _openwebui_node)
    if problems.full:
        return None
    if current is not None and current not in raw_nodes:
        problems.add(f"{path}.chat.history.currentId", f"No message {current!r} in the history.")
        return None
    if not ok:
        return None
    return _foreign_conversation(
        nodes=nodes,
        path=where,
        problems=problems,
        source=ImportFormat.OPENWEBUI,
        source_id=chat["id"],
        title=chat["title"] if isinstance(chat["title"], str) else "",
        created_at=chat["created_at"],
        updated_at=chat["updated_at"],
        current_key=current if isinstance(current, str) else None,
        instructions=chat["instructions"],
        archived=chat["archived"],
        pinned=chat["pinned"],
    )


def _chain(listed: list[Any]) -> dict[str, Any]:
    """Messages of a plain list, each the reply to the one before."""
    chain: dict[str, Any] = {}
    previous = None
    for index, raw in enumerate(listed):
        key = str(raw.get("id") or index) if isinstance(raw, dict) else str(index)
        chain[key] = {**raw, "id": key, "parentId": previous} if isinstance(raw, dict) else raw
        previous = key
    return chain


def _openwebui_node(key: str, raw: Any, path: str, problems: _Problems) -> _Node:
    raw = _object(raw, path, problems)
    parent = _get(raw, "parentId", path, problems, _string, required=False)
    role = _get(raw, "role", path, problems, _role, known=_OPENWEBUI_ROLES)
    text = _get(raw, "content", path, problems, _string, required=False) or ""
    created = _epoch_time(raw.get("timestamp"), f"{path}.timestamp", problems)
    if not text.strip():
        return _Node(key, parent, None, "An empty message.")
    text = _content(text, f"{path}.content", problems)
    usage = raw.get("usage") if isinstance(raw.get("usage"), dict) else {}
    tokens = usage.get("total_tokens")
    model = raw.get("model")
    return _Node(
        key,
        parent,
        Message(
            key=key,
            parent_key=parent,
            role=role,
            content=text,
            created_at=created or _UNKNOWN_TIME,
            updated_at=created or _UNKNOWN_TIME,
            metadata=_import_metadata(
                ImportFormat.OPENWEBUI,
                key,
                model=model if isinstance(model, str) else None,
                tokens_used=tokens
                if isinstance(tokens, int) and not isinstance(tokens, bool)
                else None,
            ),
            order=(created.timestamp() if created else math.inf,),
        ),
    )


_READERS: dict[str, Callable[[dict, str, _Problems], Conversation | None]] = {
    ImportFormat.CHATBOT: _read_chatbot,
    ImportFormat.CHATGPT: _read_chatgpt,
    ImportFormat.OPENWEBUI: _read_openwebui,
}
