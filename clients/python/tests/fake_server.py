"""A small in-memory stand-in for the backend's chat history routes, behind
``httpx.MockTransport``: enough of sessions, keyset history, idempotent
message creates and trash for the LangChain history's tests to run without a
server. The live tests (``tests/live``) run the same checks on the real one."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, code: str, detail: str, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"detail": detail, "code": code, **extra})


class FakeChatServer:
    """``httpx.MockTransport(FakeChatServer())``; ``requests`` records what came."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self._ids = itertools.count(1)

    def create_session(self, user_id: int = 1, instructions: str = "") -> str:
        session_id = str(uuid.uuid4())
        self.sessions[session_id] = {
            "session_id": session_id,
            "user_id": user_id,
            "title": "",
            "instructions": instructions,
            "archived": False,
            "pinned": False,
            "message_count": 0,
            "last_message": None,
            "active_leaf_id": None,
            "created_at": _now(),
            "updated_at": _now(),
            "deleted_at": None,
        }
        return session_id

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, method = request.url.path, request.method
        if match := re.fullmatch(r"/api/chat-history/sessions/([^/]+)/", path):
            session = self.sessions.get(match[1])
            if session is None:
                return _error(404, "session_not_found", "No such session.")
            return httpx.Response(200, json=session)
        if match := re.fullmatch(r"/api/chat-history/sessions/([^/]+)/messages/", path):
            if match[1] not in self.sessions:
                return _error(404, "session_not_found", "No such session.")
            if method == "GET":
                return self._history(match[1], request.url.params)
            return self._create(match[1], request)
        if (match := re.fullmatch(r"/api/chat-history/messages/(\d+)/", path)) and (
            method == "DELETE"
        ):
            message = self.messages.get(int(match[1]))
            if message is None or message["deleted_at"] is not None:
                return _error(404, "message_not_found", "No such message.")
            message["deleted_at"] = _now()
            return httpx.Response(204)
        return _error(404, "not_found", "Not found.")

    def _live(self, session_id: str) -> list[dict[str, Any]]:
        return [
            message
            for message in self.messages.values()
            if message["session_id"] == session_id and message["deleted_at"] is None
        ]

    def _history(self, session_id: str, params: httpx.QueryParams) -> httpx.Response:
        live = self._live(session_id)
        limit = int(params.get("limit", 100))
        if "after" in params:
            newer = [m for m in live if m["id"] > int(params["after"])]
            page = newer[:limit]
        else:
            older = [m for m in live if "before" not in params or m["id"] < int(params["before"])]
            page = older[-limit:]
        if params.get("format") == "openai":
            prompt = self.sessions[session_id]["instructions"]
            system = [{"role": "system", "content": prompt}] if prompt else []
            return httpx.Response(
                200, json=system + [{"role": m["role"], "content": m["content"]} for m in page]
            )
        ids = [m["id"] for m in page]
        return httpx.Response(
            200,
            json={
                "session_id": session_id,
                "title": "",
                "messages": page,
                "has_more_before": bool(ids) and any(m["id"] < ids[0] for m in live),
                "has_more_after": bool(ids) and any(m["id"] > ids[-1] for m in live),
                "oldest_id": ids[0] if ids else None,
                "newest_id": ids[-1] if ids else None,
            },
        )

    def _create(self, session_id: str, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        key = request.headers.get("Idempotency-Key") or body.get("client_message_id")
        if not isinstance(body.get("content"), str) or not body["content"].strip():
            return _error(400, "invalid", "content: required.", errors={"content": ["Required."]})
        for message in self.messages.values():
            if key and message["session_id"] == session_id and message["client_message_id"] == key:
                if (message["role"], message["content"]) != (body["role"], body["content"]):
                    return _error(
                        409, "idempotency_key_reused", "Key reused.", message_id=message["id"]
                    )
                return httpx.Response(200, json=message)
        metadata = dict(body.get("metadata") or {})
        if "stream_id" in body:
            metadata["stream_id"] = body["stream_id"]
        message_id = next(self._ids)
        live = self._live(session_id)
        self.messages[message_id] = {
            "id": message_id,
            "session_id": session_id,
            "role": body["role"],
            "author": None,
            "content": body["content"],
            "metadata": metadata,
            "client_message_id": key,
            "parent_id": live[-1]["id"] if live else None,
            "siblings": {"index": 1, "count": 1},
            "version": 1,
            "feedback": None,
            "created_at": _now(),
            "updated_at": _now(),
            "deleted_at": None,
        }
        return httpx.Response(201, json=self.messages[message_id])
