"""Seed the benchmark database (run by bench/run.py after ``migrate``).

Users and profiles go through the ORM (``bulk_create``); sessions and messages
are streamed with PostgreSQL ``COPY`` with ids assigned here, then the session
counters the services maintain (``message_count`` and the last-message copy)
are set by the service that keeps them, ``chat_session_counters_refresh``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from chat_history.models import ChatMessage, ChatSession  # noqa: E402
from chat_history.services import chat_session_counters_refresh  # noqa: E402
from users.models import Profile, User  # noqa: E402

PASSWORD = "bench password 9f3c"  # noqa: S105 - a throwaway account in a throwaway database
MESSAGE_BYTES = 400
MAIN_SESSIONS, MAIN_SESSION_MESSAGES = 20, 500
HUGE_SESSION_MESSAGES = 200_000
HEAVY_SMALL_SESSIONS = 19
LOGIN_USERS = 64
OTHER_USERS, OTHER_SESSIONS, OTHER_SESSION_MESSAGES = 2_000, 5, 10
START = datetime(2026, 1, 1, tzinfo=UTC)

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


class Seeder:
    def __init__(self) -> None:
        self.rng = random.Random(6)
        self.texts = _texts(997, self.rng)
        self.session_id = 0
        self.message_id = 0
        self.sessions: list[tuple] = []
        self.plan: list[tuple[int, int, datetime]] = []  # (session pk, messages, first time)

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
            "login": make("bench-login", LOGIN_USERS),
            "other": make("bench-other", OTHER_USERS),
        }
        everyone = [user for group in groups.values() for user in group]
        User.objects.bulk_create(everyone, batch_size=1000)
        Profile.objects.bulk_create([Profile(user=user) for user in everyone], batch_size=1000)
        return groups

    def session(self, user: User, messages: int, title: str) -> tuple[int, str]:
        """Plan a session of ``messages`` messages (its counters are set after the copy)."""
        self.session_id += 1
        first = START + timedelta(minutes=self.session_id)
        self.plan.append((self.session_id, messages, first))
        public_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        self.sessions.append(
            (self.session_id, first, first, user.pk, public_id, title, False, False, 0, "", "")
        )
        self.message_id += messages
        return self.session_id, str(public_id)

    def _text(self, message_id: int) -> str:
        return self.texts[message_id % len(self.texts)]

    def _messages(self):
        message_id = 0
        for session_pk, count, first in self.plan:
            for n in range(count):
                message_id += 1
                at = first + timedelta(seconds=n)
                role = "user" if n % 2 == 0 else "assistant"
                meta = "{}" if role == "user" else '{"tokens_used": 120}'
                yield (message_id, at, at, session_pk, role, self._text(message_id), meta)

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
                ("id", "created_at", "updated_at", "session_id", "role", "content", "metadata"),
                self._messages(),
            )
            for table in (ChatSession._meta.db_table, ChatMessage._meta.db_table):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )


def main() -> None:
    started = time.perf_counter()
    seeder = Seeder()
    with transaction.atomic():
        groups = seeder.users(make_password(PASSWORD))
        main_user, heavy = groups["main"][0], groups["heavy"][0]
        main_sessions = [
            seeder.session(main_user, MAIN_SESSION_MESSAGES, f"Main session {n}")
            for n in range(MAIN_SESSIONS)
        ]
        huge = seeder.session(heavy, HUGE_SESSION_MESSAGES, "The 200,000-message session")
        heavy_sessions = [huge] + [
            seeder.session(heavy, MAIN_SESSION_MESSAGES, f"Heavy session {n}")
            for n in range(HEAVY_SMALL_SESSIONS)
        ]
        for user in groups["other"]:
            for n in range(OTHER_SESSIONS):
                seeder.session(user, OTHER_SESSION_MESSAGES, f"Other session {n}")
        seeder.copy()
        chat_session_counters_refresh(sessions=ChatSession.objects.all())
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
                    "token": str(AccessToken.for_user(main_user)),
                    "sessions": [public for _, public in main_sessions],
                    "session_pks": [pk for pk, _ in main_sessions],
                },
                "heavy": {
                    "email": heavy.email,
                    "token": str(AccessToken.for_user(heavy)),
                    "huge_session": huge[1],
                    "huge_session_pk": huge[0],
                    "sessions": [public for _, public in heavy_sessions],
                },
                "login_emails": [user.email for user in groups["login"]],
            }
        )
    )


if __name__ == "__main__":
    main()
