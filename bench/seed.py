"""Seed the benchmark database (run by bench/run.py after ``migrate``).

Users and profiles go through the ORM (``bulk_create``); sessions, their
owners' memberships and messages are streamed with PostgreSQL ``COPY`` with ids
assigned here, then the session counters the services maintain
(``message_count``, the last-message copy and the active leaf) are set by the
service that keeps them, ``chat_session_counters_refresh``. Every session has
its owner's membership row, read up to its newest message (``_owner_row``), and
every user message its author, the owner, as ``chat_message_create`` writes it.

The dashboard (issue 13) is measured for two users whose histories differ
only in length: a day of model calls and a year of them (``USAGE_YEAR_DAYS``),
recorded through the ledger's service, ``usage_record``, with the clock set to
each day in turn, so the aggregates are the ones the service maintains.

The shared session (issue 12) has ``SHARED_MEMBERS`` members: its owner and
editors added by the service that adds members, ``chat_member_add``. The first
editor also owns a session of the same length alone (the owner-only side of
the membership cost).

Every session is a message tree as the services leave it (``_tree``): a flat
session is one chain (each message's parent the one before it); the branched
session has ``TREE_BRANCHES`` branch points whose active path crosses every one
of them, half through the original message and half through its regeneration
or edit, with the abandoned branch's messages between active ones by id.
Prints one JSON object: what the load scripts need (ids, tokens) and how long
the seed took.

Usage: python bench/seed.py  (the environment names the database)
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from chat_history.models import (  # noqa: E402
    ChatMessage,
    ChatSession,
    ChatSessionMember,
    MemberRole,
)
from chat_history.services import chat_member_add, chat_session_counters_refresh  # noqa: E402
from usage.services import usage_record  # noqa: E402
from users.models import Profile, User  # noqa: E402
from users.services import provider_key_create  # noqa: E402

PASSWORD = "bench password 9f3c"  # noqa: S105 - a throwaway account in a throwaway database
MESSAGE_BYTES = 400
MAIN_SESSIONS, MAIN_SESSION_MESSAGES = 20, 500
HUGE_SESSION_MESSAGES = 200_000
TREE_BRANCHES = 1_000  # branch points of the tree user's 200,000-message session
HEAVY_SMALL_SESSIONS = 19
LOGIN_USERS = 64
OTHER_USERS, OTHER_SESSIONS, OTHER_SESSION_MESSAGES = 2_000, 5, 10
# The shared session: its owner and 99 editors (CHAT_SESSION_MAX_MEMBERS is 100).
SHARED_MEMBERS = 100
START = datetime(2026, 1, 1, tzinfo=UTC)
USAGE_YEAR_DAYS = 365
USAGE_MODELS = ("gpt-4o", "gpt-4o-mini")
USAGE_CALLS_PER_DAY = 6  # per model, spread over two keys

_WORDS = [
    "the",
    "model",
    "answer",
    "question",
    "context",
    "document",
    "retrieval",
    "vector",
    "chunk",
    "embed",
    "prompt",
    "token",
    "stream",
    "session",
    "user",
    "assistant",
    "system",
    "search",
    "index",
    "cache",
    "latency",
    "reply",
    "대화",
    "문서",
    "검색",
    "질문",
    "답변",
    "모델",
    "세션",
    "사용자",
]


def _texts(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct texts of exactly MESSAGE_BYTES bytes of UTF-8."""
    texts = []
    for number in range(count):
        words = [f"#{number}"]
        while len(" ".join(words).encode()) < MESSAGE_BYTES:
            words.append(rng.choice(_WORDS))
        text = " ".join(words).encode()[:MESSAGE_BYTES].decode(errors="ignore")
        texts.append(text + "." * (MESSAGE_BYTES - len(text.encode())))
    return texts


class TreeRow(NamedTuple):
    """One message of a planned tree, by offsets (0-based, in id order) within its session."""

    parent: int | None
    active: bool
    sibling_index: int
    sibling_count: int
    depth: int


def _tree(count: int, branches: int, tail: int = 10) -> list[TreeRow]:
    """``count`` messages in id order (every parent before its replies) forming
    one active path with ``branches`` branch points spread evenly along it.

    At branch point ``k`` the active message ``fork`` has two replies: the one
    the active path takes and an abandoned one with ``1 + k % 4`` replies of its
    own below it. For even ``k`` the abandoned reply is the original and the
    active one its later regeneration (or edit: a fork at a user message forks
    a user message); for odd ``k`` the abandoned one is the regeneration and the
    user switched back to the original. Either way the abandoned messages sit
    between two active ones by id. The last branch point is ``tail`` active
    messages before the leaf, so the newest page crosses it. Roles alternate
    with depth (user first).
    """
    abandoned = [1 + 1 + k % 4 for k in range(branches)]  # the sibling and its replies
    path_length = count - sum(abandoned)
    last = path_length - 1 - tail  # where the last branch point forks
    if branches and last < branches:
        raise ValueError(f"{count} messages cannot hold {branches} branch points")
    # Branch point k forks at the active path's message number forks[k] (0-based).
    forks = {last - (branches - 1 - k) * last // branches: k for k in range(branches)}
    rows: list[TreeRow] = []

    def add(parent: int | None, *, active: bool, sibling: tuple[int, int] = (1, 1)) -> int:
        depth = rows[parent].depth + 1 if parent is not None else 0
        rows.append(TreeRow(parent, active, *sibling, depth))
        return len(rows) - 1

    def add_abandoned(fork: int, k: int, position: int) -> None:
        below = add(fork, active=False, sibling=(position, 2))
        for _ in range(abandoned[k] - 1):
            below = add(below, active=False)

    tip: int | None = None  # the newest message of the active path
    for number in range(path_length):
        k = forks.get(number - 1)
        if k is None:
            tip = add(tip, active=True)
        elif k % 2 == 0:  # regenerated (or edited), and the new reply kept
            add_abandoned(tip, k, 1)
            tip = add(tip, active=True, sibling=(2, 2))
        else:  # regenerated, then switched back to the original
            fork = tip
            tip = add(fork, active=True, sibling=(1, 2))
            add_abandoned(fork, k, 2)
    return rows


def _copy(cursor, model, given: tuple[str, ...], rows) -> None:
    """``COPY`` ``rows`` (values of the ``given`` fields, by attname) into
    ``model``'s table; every other column gets its field's default, as the ORM
    would insert it, so a new field with a default needs no change here."""
    fields = {field.attname: field for field in model._meta.concrete_fields}
    others = [field for name, field in fields.items() if name not in given]
    defaults = tuple(field.get_db_prep_save(field.get_default(), connection) for field in others)
    columns = ", ".join(field.column for field in [*(fields[name] for name in given), *others])
    with cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((*row, *defaults))


class Planned(NamedTuple):
    """A session to copy: its messages' shape, time and author."""

    pk: int
    messages: int
    branches: int
    first: datetime  # the session's creation and its first message
    owner: User


def _owner_row(member_pk: int, plan: Planned, last_message_id: int | None) -> tuple:
    """The owner's membership of a seeded session (fields: ``_MEMBER_FIELDS``).

    ``chat_session_insert`` is the one home of this rule: every session has its
    owner's row (role owner, nothing unread). The seed cannot call it for
    10,000 sessions (two ORM inserts each, and the session ids would come from
    the database instead of this plan), so it mirrors it here, with the read
    marker on the newest message: a bulk-loaded session arrives read, as an
    import leaves it (``chat_history.imports``) and migration 0006 backfilled
    the sessions that existed. A test compares it with the services' row.
    """
    return (
        member_pk,
        plan.first,
        plan.first,
        plan.pk,
        plan.owner.pk,
        MemberRole.OWNER.value,
        last_message_id,
        0,
    )


_MEMBER_FIELDS = (
    "id",
    "created_at",
    "updated_at",
    "session_id",
    "user_id",
    "role",
    "last_read_message_id",
    "unread_count",
)


class Seeder:
    def __init__(self) -> None:
        self.rng = random.Random(6)
        self.texts = _texts(997, self.rng)
        self.session_id = 0
        self.message_id = 0
        self.sessions: list[tuple] = []
        self.plan: list[Planned] = []
        self.members: list[tuple] = []  # the owners' rows (``_owner_row``)

    def users(self, password_hash: str) -> dict[str, list[User]]:
        def make(prefix: str, count: int) -> list[User]:
            return [
                User(
                    username=f"{prefix}{n}",
                    email=f"{prefix}{n}@bench.example.com",
                    password=password_hash,
                )
                for n in range(count)
            ]

        groups = {
            "main": make("bench-main", 1),
            "heavy": make("bench-heavy", 1),
            "tree": make("bench-tree", 1),
            "login": make("bench-login", LOGIN_USERS),
            "other": make("bench-other", OTHER_USERS),
            "shared_owner": make("bench-share-owner", 1),
            "members": make("bench-member", SHARED_MEMBERS - 1),
            "usage": make("bench-usage", 2),
        }
        everyone = [user for group in groups.values() for user in group]
        User.objects.bulk_create(everyone, batch_size=1000)
        Profile.objects.bulk_create([Profile(user=user) for user in everyone], batch_size=1000)
        return groups

    def session(
        self, user: User, messages: int, title: str, *, branches: int = 0
    ) -> tuple[int, str]:
        """Plan a session of ``messages`` messages, a flat chain or a tree with
        ``branches`` branch points (see ``_tree``); its counters are set after
        the copy."""
        self.session_id += 1
        first = START + timedelta(minutes=self.session_id)
        plan = Planned(self.session_id, messages, branches, first, user)
        self.plan.append(plan)
        public_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        self.sessions.append(
            (self.session_id, first, first, user.pk, public_id, title, False, False, 0, "", "")
        )
        self.message_id += messages
        last = self.message_id if messages else None  # no message of the seed is trashed
        self.members.append(_owner_row(len(self.members) + 1, plan, last))
        return self.session_id, str(public_id)

    def _text(self, message_id: int) -> str:
        return self.texts[message_id % len(self.texts)]

    def _messages(self):
        message_id = 0
        flat: dict[int, list[TreeRow]] = {}  # one chain per length, shared
        for session_pk, count, branches, first, owner in self.plan:
            if branches:
                tree = _tree(count, branches)
            else:
                if count not in flat:
                    flat[count] = _tree(count, 0)
                tree = flat[count]
            base = message_id + 1  # the id of offset 0
            for n, row in enumerate(tree):
                message_id += 1
                at = first + timedelta(seconds=n)
                by_user = row.depth % 2 == 0
                parent = None if row.parent is None else base + row.parent
                yield (
                    message_id,
                    at,
                    at,
                    session_pk,
                    "user" if by_user else "assistant",
                    self._text(message_id),
                    "{}" if by_user else '{"tokens_used": 120}',
                    parent,
                    row.active,
                    row.sibling_index,
                    row.sibling_count,
                    # The author of a user message: the owner, under the name they have.
                    owner.pk if by_user else None,
                    owner.username if by_user else "",
                )

    def copy(self) -> None:
        with connection.cursor() as cursor:
            raw = cursor.cursor
            _copy(
                raw,
                ChatSession,
                (
                    "id",
                    "created_at",
                    "updated_at",
                    "user_id",
                    "session_id",
                    "title",
                    "archived",
                    "pinned",
                    "message_count",
                    "last_message_role",
                    "last_message_preview",
                ),
                self.sessions,
            )
            _copy(
                raw,
                ChatMessage,
                (
                    "id",
                    "created_at",
                    "updated_at",
                    "session_id",
                    "role",
                    "content",
                    "metadata",
                    "parent_id",
                    "on_active_path",
                    "sibling_index",
                    "sibling_count",
                    "author_id",
                    "author_name",
                ),
                self._messages(),
            )
            _copy(raw, ChatSessionMember, _MEMBER_FIELDS, self.members)
            for table in (
                ChatSession._meta.db_table,
                ChatMessage._meta.db_table,
                ChatSessionMember._meta.db_table,
            ):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )


def members_add(session_pk: int, owner: User, editors: list[User]) -> None:
    """``editors`` join the copied session through the service that adds
    members (few enough for it: a lock, an update and an insert each). Its
    events reach no one: bench/run.py seeds without Redis."""
    session = ChatSession.objects.get(pk=session_pk)
    for user in editors:
        chat_member_add(actor=owner, session=session, user_id=user.pk, role=MemberRole.EDITOR)


def usage_history(user: User, days: int) -> None:
    """``days`` days of model calls ending today, on two OpenAI keys, each
    recorded by ``usage_record`` at noon of its day (the clock patched)."""
    from unittest import mock

    keys = [
        provider_key_create(user=user, provider="openai", api_key=f"sk-bench{n}-" + "x" * 40)
        for n in range(2)
    ]
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    call = 0
    for offset in range(days - 1, -1, -1):
        with mock.patch("django.utils.timezone.now", return_value=today - timedelta(days=offset)):
            for model in USAGE_MODELS:
                for n in range(USAGE_CALLS_PER_DAY):
                    call += 1
                    usage_record(
                        user_id=user.pk,
                        key_id=keys[n % 2].pk,
                        provider="openai",
                        model=model,
                        prompt_tokens=1200,
                        completion_tokens=300,
                        idempotency_key=f"bench-{call}",
                    )


def _token(user: User) -> str:
    return str(AccessToken.for_user(user))


def main() -> None:
    started = time.perf_counter()
    seeder = Seeder()
    with transaction.atomic():
        groups = seeder.users(make_password(PASSWORD))
        main_user, heavy, tree_user = groups["main"][0], groups["heavy"][0], groups["tree"][0]
        main_sessions = [
            seeder.session(main_user, MAIN_SESSION_MESSAGES, f"Main session {n}")
            for n in range(MAIN_SESSIONS)
        ]
        huge = seeder.session(heavy, HUGE_SESSION_MESSAGES, "The 200,000-message session")
        heavy_sessions = [huge] + [
            seeder.session(heavy, MAIN_SESSION_MESSAGES, f"Heavy session {n}")
            for n in range(HEAVY_SMALL_SESSIONS)
        ]
        tree = seeder.session(
            tree_user,
            HUGE_SESSION_MESSAGES,
            "The 200,000-message session with 1,000 branch points",
            branches=TREE_BRANCHES,
        )
        for user in groups["other"]:
            for n in range(OTHER_SESSIONS):
                seeder.session(user, OTHER_SESSION_MESSAGES, f"Other session {n}")
        shared_owner, editors = groups["shared_owner"][0], groups["members"]
        shared = seeder.session(
            shared_owner, MAIN_SESSION_MESSAGES, f"Shared session ({SHARED_MEMBERS} members)"
        )
        solo = seeder.session(editors[0], MAIN_SESSION_MESSAGES, "Owner-only session")
        seeder.copy()
        chat_session_counters_refresh(sessions=ChatSession.objects.all())
        members_add(shared[0], shared_owner, editors)
        usage_day, usage_year = groups["usage"]
        usage_history(usage_day, 1)
        usage_history(usage_year, USAGE_YEAR_DAYS)
    with connection.cursor() as cursor:
        # Leave nothing for autovacuum to do during the measurements: statistics,
        # visibility map and hint bits now, dirty pages written out.
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "users": User.objects.count(),
                "sessions": len(seeder.sessions),
                "messages": seeder.message_id,
                "password": PASSWORD,
                "main": {
                    "email": main_user.email,
                    "token": _token(main_user),
                    "sessions": [public for _, public in main_sessions],
                    "session_pks": [pk for pk, _ in main_sessions],
                },
                "heavy": {
                    "email": heavy.email,
                    "token": _token(heavy),
                    "huge_session": huge[1],
                    "huge_session_pk": huge[0],
                    "sessions": [public for _, public in heavy_sessions],
                },
                "tree": {
                    "email": tree_user.email,
                    "token": _token(tree_user),
                    "session": tree[1],
                    "session_pk": tree[0],
                    "branches": TREE_BRANCHES,
                },
                "login_emails": [user.email for user in groups["login"]],
                # The membership cost: the first editor reads and posts to the
                # shared session and to the session they own alone.
                "shared": {
                    "members": SHARED_MEMBERS,
                    "session": shared[1],
                    "session_pk": shared[0],
                    "editor_email": editors[0].email,
                    "editor_token": _token(editors[0]),
                    "solo_session": solo[1],
                    "solo_session_pk": solo[0],
                    # Every member's, the owner's first: one socket each (scenario 9).
                    "member_tokens": [_token(user) for user in [shared_owner, *editors]],
                },
                # The dashboard with a day and with a year of usage (issue 13).
                "usage": {
                    "day_token": _token(usage_day),
                    "year_token": _token(usage_year),
                    "year_days": USAGE_YEAR_DAYS,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
