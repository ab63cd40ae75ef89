"""POST /import/ and GET /imports/{job_id}/: three formats, all-or-nothing checks,
idempotence, and the background job (thread and ``process_imports``).

The samples under ``samples/`` are real files: a ChatGPT ``conversations.json``
written by hand to the documented format (a regenerated answer, an edited
question, a tool call, an image, a conversation with nothing to import) and an
Open WebUI export with a regenerated answer. The lossless file is produced by
the exporter itself in the round-trip test.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from chat_history import services
from chat_history.models import (
    ChatMessage,
    ChatMessageFeedback,
    ChatMessageRevision,
    ChatSession,
    ImportJob,
    ImportStatus,
)
from chat_history.tests.factories import ChatSessionFactory, conversation_tree

SAMPLES = Path(__file__).parent / "samples"
IMPORT_URL = reverse("chat_history:import")


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _sample_json(name: str):
    return json.loads(_sample(name))


def _post_file(client, content: bytes, *, name: str = "conversations.json", **fields):
    upload = SimpleUploadedFile(name, content, content_type="application/json")
    return client.post(IMPORT_URL, {"file": upload, **fields}, format="multipart")


def _job_url(job_id: str) -> str:
    return reverse("chat_history:import-detail", args=[job_id])


def _by_source_id(session: ChatSession) -> dict[str, ChatMessage]:
    """The session's messages by the id they had in the imported file."""
    return {
        m.metadata["import"]["id"]: m
        for m in ChatMessage.objects.filter(session=session).order_by("id")
    }


def _source_id(message: ChatMessage | None) -> str | None:
    return None if message is None else message.metadata["import"]["id"]


def _counts() -> tuple[int, int, int, int, int]:
    return (
        ChatSession.objects.count(),
        ChatMessage.objects.count(),
        ChatMessageRevision.objects.count(),
        ChatMessageFeedback.objects.count(),
        ImportJob.objects.count(),
    )


def _stored_import_files() -> list[str]:
    try:
        directories, files = default_storage.listdir("chat-imports")
    except FileNotFoundError:
        return []
    names = list(files)
    for directory in directories:
        names += default_storage.listdir(f"chat-imports/{directory}")[1]
    return names


# --- ChatGPT --------------------------------------------------------------------------


def test_a_chatgpt_export_keeps_its_branches_and_shows_the_current_node(auth_client, user):
    response = _post_file(auth_client, _sample("chatgpt_conversations.json"))

    assert response.status_code == 201, response.json()
    job = response.json()
    assert job["status"] == "succeeded"
    assert job["format"] == "chatgpt"
    assert job["progress"] == {"done": 3, "total": 3}
    assert job["counts"] == {
        "sessions_imported": 2,
        "messages_imported": 8,
        "conversations_skipped": 1,
        "items_skipped": 6,
    }
    session = ChatSession.objects.get(
        user=user, import_key="chatgpt:6f1c2e4a-0d7b-4f5e-9a11-2b3c4d5e6f70"
    )
    messages = _by_source_id(session)
    # Six text messages; the hidden system message, the tool call and its output are gone,
    # and the answer after the tool hangs from the edited question.
    assert {key: _source_id(m.parent) for key, m in messages.items()} == {
        "u-1": None,
        "a-1": "u-1",
        "a-1-regen": "u-1",
        "u-2": "a-1-regen",
        "u-2-edit": "a-1-regen",
        "a-2": "u-2-edit",
    }
    active = [key for key, m in messages.items() if m.on_active_path]
    assert active == ["u-1", "a-1-regen", "u-2-edit", "a-2"]
    assert session.active_leaf_id == messages["a-2"].pk
    assert {key: (m.sibling_index, m.sibling_count) for key, m in messages.items()} == {
        "u-1": (1, 1),
        "a-1": (1, 2),
        "a-1-regen": (2, 2),
        "u-2": (1, 2),
        "u-2-edit": (2, 2),
        "a-2": (1, 1),
    }
    assert all(m.parent_id is None or m.parent_id < m.pk for m in messages.values())
    assert messages["a-1-regen"].created_at == datetime(2023, 11, 14, 22, 13, 50, tzinfo=UTC)
    assert messages["a-2"].updated_at == datetime.fromtimestamp(1700000126, tz=UTC)
    assert messages["a-2"].metadata == {
        "import": {"source": "chatgpt", "id": "a-2"},
        "model": "gpt-4o-mini",
    }
    assert messages["u-1"].content == "What is RAG?"
    assert session.title == "RAG 질문"
    assert session.message_count == 6
    assert session.created_at == datetime.fromtimestamp(1700000000.123456, tz=UTC)
    assert session.updated_at == datetime.fromtimestamp(1700000400.5, tz=UTC)

    diagram = ChatSession.objects.get(user=user, title="Diagram question")
    assert [m.content for m in _by_source_id(diagram).values()] == [
        "What does this diagram show?",
        "A retrieval pipeline: loader, splitter, embedder, vector store.",
    ]
    skipped = {
        (item["source_id"][:8], item["item"]): item["reason"] for item in job["report"]["skipped"]
    }
    assert skipped == {
        ("6f1c2e4a", "sys-1"): "A hidden system message.",
        ("6f1c2e4a", "call-1"): "A call to the browser tool.",
        ("6f1c2e4a", "tool-1"): "A tool's output (not a chat message).",
        ("7a2b3c4d", "u-img"): "1 non-text part(s) dropped, the text kept.",
        ("8b3c4d5e", "sys-3"): "A hidden system message.",
        ("8b3c4d5e", None): "No text messages to import.",
    }
    assert [item["title"] for item in job["report"]["imported"]] == [
        "RAG 질문",
        "Diagram question",
    ]
    assert not ChatSession.objects.filter(title="New chat").exists()


def test_importing_the_same_file_again_adds_nothing(auth_client, user):
    first = _post_file(auth_client, _sample("chatgpt_conversations.json")).json()
    before = _counts()

    again = _post_file(auth_client, _sample("chatgpt_conversations.json"))

    assert again.status_code == 201
    job = again.json()
    assert job["counts"]["sessions_imported"] == 0
    assert job["counts"]["conversations_skipped"] == 3
    imported = {item["session_id"] for item in first["report"]["imported"]}
    reasons = [item["reason"] for item in job["report"]["skipped"] if item["item"] is None]
    assert sorted(reasons)[:2] == sorted(f"Already imported (session {s})." for s in imported)
    assert _counts()[:4] == before[:4]


def test_a_later_export_that_overlaps_imports_only_the_new_conversations(auth_client, user):
    _post_file(auth_client, _sample("chatgpt_conversations.json"))
    later = _sample_json("chatgpt_conversations.json")
    added = copy.deepcopy(later[1])
    added["id"] = added["conversation_id"] = "9c4d5e6f-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
    added["title"] = "A new one"
    later.append(added)

    job = _post_file(auth_client, json.dumps(later).encode()).json()

    assert job["counts"]["sessions_imported"] == 1
    assert [item["title"] for item in job["report"]["imported"]] == ["A new one"]
    assert ChatSession.objects.filter(user=user).count() == 3


def test_another_user_may_import_the_same_file(auth_client, make_auth_client, other_user):
    _post_file(auth_client, _sample("chatgpt_conversations.json"))

    job = _post_file(make_auth_client(other_user), _sample("chatgpt_conversations.json")).json()

    assert job["counts"]["sessions_imported"] == 2
    assert ChatSession.objects.filter(user=other_user).count() == 2


# --- Open WebUI -------------------------------------------------------------------------


def test_an_open_webui_export_keeps_its_branches_instructions_and_pin(auth_client, user):
    response = _post_file(auth_client, _sample("openwebui_export.json"), name="chat-export.json")

    assert response.status_code == 201
    job = response.json()
    assert job["format"] == "openwebui"
    assert job["counts"]["messages_imported"] == 4
    session = ChatSession.objects.get(user=user)
    assert session.import_key == "openwebui:3f8e2a1c-5b6d-4e7f-8a9b-0c1d2e3f4a5b"
    assert (session.title, session.instructions, session.pinned, session.archived) == (
        "Qdrant 정리",
        "Answer in Korean, briefly.",
        True,
        False,
    )
    messages = _by_source_id(session)
    assert {key: _source_id(m.parent) for key, m in messages.items()} == {
        "m-user-1": None,
        "m-asst-1": "m-user-1",
        "m-asst-2": "m-user-1",
        "m-user-2": "m-asst-2",
    }
    # The current message was an empty (failed) answer: its question becomes the tip.
    assert [k for k, m in messages.items() if m.on_active_path] == [
        "m-user-1",
        "m-asst-2",
        "m-user-2",
    ]
    assert session.active_leaf_id == messages["m-user-2"].pk
    assert (messages["m-asst-2"].sibling_index, messages["m-asst-2"].sibling_count) == (2, 2)
    assert messages["m-asst-2"].metadata["tokens_used"] == 45
    assert messages["m-user-1"].created_at == datetime.fromtimestamp(1720000000, tz=UTC)
    assert job["report"]["skipped"] == [
        {
            "source_id": "3f8e2a1c-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
            "title": "Qdrant 정리",
            "item": "m-asst-3",
            "reason": "An empty message.",
        }
    ]


# --- This service's lossless export: a round trip ---------------------------------------


def _canonical(session: ChatSession) -> dict:
    """Everything a user can tell about a conversation, with ids replaced by
    positions."""
    session.refresh_from_db()
    messages = list(ChatMessage.objects.filter(session=session).order_by("id"))
    position = {m.pk: n for n, m in enumerate(messages)}
    revisions = ChatMessageRevision.objects.filter(session=session).order_by("message_id", "number")
    ratings = ChatMessageFeedback.objects.filter(session=session).order_by("message_id")
    return {
        "session": {
            name: getattr(session, name)
            for name in (
                "title",
                "instructions",
                "archived",
                "pinned",
                "message_count",
                "last_message_role",
                "last_message_preview",
                "last_message_at",
                "created_at",
                "updated_at",
            )
        }
        | {"active_leaf": position.get(session.active_leaf_id)},
        "messages": [
            {
                "parent": position.get(m.parent_id),
                **{
                    name: getattr(m, name)
                    for name in (
                        "role",
                        "content",
                        "metadata",
                        "client_message_id",
                        "created_at",
                        "updated_at",
                        "deleted_at",
                        "on_active_path",
                        "sibling_index",
                        "sibling_count",
                        "version",
                        "feedback",
                    )
                },
            }
            for m in messages
        ],
        "revisions": [
            (
                position[r.message_id],
                r.number,
                r.content,
                r.written_at,
                r.edited_at,
                r.edited_by_label,
                r.edited_by_user_id == session.user_id,
            )
            for r in revisions
        ],
        "feedback": [
            (position[f.message_id], f.rating, f.comment, f.reasons, f.created_at, f.updated_at)
            for f in ratings
        ],
    }


def _export(client, session) -> bytes:
    url = reverse("chat_history:session-export", args=[session.session_id])
    response = client.get(url, {"format": "lossless"})
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_a_lossless_export_imported_again_is_the_same_conversation(
    auth_client, make_auth_client, user, other_user
):
    original = conversation_tree(user)
    exported = _export(auth_client, original)
    other_client = make_auth_client(other_user)

    response = _post_file(other_client, exported, name="chat.chatbot.json")

    assert response.status_code == 201, response.json()
    assert response.json()["format"] == "chatbot"
    copy_ = ChatSession.objects.get(user=other_user)
    assert copy_.import_key == f"chatbot:{original.session_id}"
    expected = _canonical(original)
    # Edits the owner made are the new owner's in the copy; the labels stay as written.
    assert _canonical(copy_) == expected
    assert [r.edited_by_user_id for r in ChatMessageRevision.objects.filter(session=copy_)] == [
        other_user.pk,
        None,
    ]
    # And the copy exports to the same document, but for its ids.
    again = json.loads(_export(other_client, copy_))
    first = json.loads(exported)
    ids = {m["id"]: n for n, m in enumerate(first["messages"])}
    new_ids = {m["id"]: n for n, m in enumerate(again["messages"])}
    for document, mapping in ((first, ids), (again, new_ids)):
        document["session"].pop("session_id")
        document["session"]["active_leaf_id"] = mapping[document["session"]["active_leaf_id"]]
        for message in document["messages"]:
            message["id"] = mapping[message["id"]]
            message["parent_id"] = mapping.get(message["parent_id"])
            for version in message["versions"]:
                version["edited_by_owner"] = True if version["edited_by_owner"] else None
    assert again == first


def test_the_same_user_importing_their_export_gets_a_copy_once(auth_client, user):
    original = conversation_tree(user)
    exported = _export(auth_client, original)

    first = _post_file(auth_client, exported).json()
    second = _post_file(auth_client, exported).json()

    assert first["counts"]["sessions_imported"] == 1
    assert second["counts"]["sessions_imported"] == 0
    assert ChatSession.objects.filter(user=user).count() == 2


def test_a_list_of_lossless_exports_imports_each(auth_client, make_auth_client, user, other_user):
    documents = [json.loads(_export(auth_client, conversation_tree(user))) for _ in range(2)]

    job = _post_file(make_auth_client(other_user), json.dumps(documents).encode()).json()

    assert job["counts"]["sessions_imported"] == 2


def test_writing_a_conversation_costs_queries_per_batch_not_per_message(
    auth_client, make_auth_client, user, other_user
):
    def import_queries(count: int) -> int:
        session = ChatSessionFactory(user=user)
        parent = None
        for n in range(count):
            parent = ChatMessage.objects.create(
                session=session, parent=parent, role=("user", "assistant")[n % 2], content=f"m{n}"
            )
        services.chat_session_counters_refresh(sessions=ChatSession.objects.filter(pk=session.pk))
        exported = _export(auth_client, session)
        with CaptureQueriesContext(connection) as queries:
            assert _post_file(make_auth_client(other_user), exported).status_code == 201
        return len(queries)

    short, long = import_queries(30), import_queries(300)
    # Rows go in batches (on SQLite of a few dozen, its parameter limit; on
    # PostgreSQL of 1,000): 270 more messages cost a handful of queries.
    assert long - short <= 270 // 20, (short, long)


# --- Refused files: a 400 naming the problem, and nothing written ------------------------


def _chatgpt_with(change) -> bytes:
    conversations = _sample_json("chatgpt_conversations.json")
    change(conversations[0]["mapping"])
    return json.dumps(conversations).encode()


def _cycle(mapping):
    mapping["client-created-root"]["parent"] = "a-2"


def _missing_parent(mapping):
    mapping["u-2"]["parent"] = "no-such-node"


def _unknown_role(mapping):
    mapping["a-1"]["message"]["author"]["role"] = "critic"


def _too_long(mapping):
    mapping["u-2"]["message"]["content"]["parts"] = ["x" * 101]


def _wrong_type(mapping):
    mapping["u-1"]["message"]["content"]["parts"] = "What is RAG?"


def _lossless_version_2() -> bytes:
    return json.dumps(
        {"format": "chatbot.conversation", "version": 2, "session": {}, "messages": []}
    ).encode()


@pytest.mark.parametrize(
    ("content", "where", "message"),
    [
        pytest.param(b'[{"title": "cut', "file", "Not a JSON file", id="bad-json"),
        pytest.param(b'{"hello": "world"}', "file", "Not a format this server imports", id="shape"),
        pytest.param(b"[]", "file", "holds no conversations", id="empty"),
        pytest.param(_chatgpt_with(_cycle), "[0].mapping.", "form a cycle", id="cycle"),
        pytest.param(
            _chatgpt_with(_missing_parent),
            "[0].mapping.u-2",
            "Its parent 'no-such-node' is not in this conversation.",
            id="missing-parent",
        ),
        pytest.param(
            _chatgpt_with(_unknown_role),
            "[0].mapping.a-1.message.author.role",
            "Unknown role 'critic'",
            id="unknown-role",
        ),
        pytest.param(
            _chatgpt_with(_too_long),
            "[0].mapping.u-2.message.content.parts",
            "Must be at most 100 characters (it has 101).",
            id="too-long",
        ),
        pytest.param(
            _chatgpt_with(_wrong_type),
            "[0].mapping.u-1.message.content.parts",
            "Must be an array.",
            id="wrong-type",
        ),
        pytest.param(_lossless_version_2(), "version", "Unsupported version 2", id="version"),
    ],
)
def test_a_wrong_file_is_refused_and_nothing_is_written(
    auth_client, settings, content, where, message
):
    settings.CHAT_MESSAGE_MAX_LENGTH = 100
    before = _counts()

    response = _post_file(auth_client, content)

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "invalid"
    problems = [(path, text) for path, texts in body["errors"].items() for text in texts]
    assert any(path.startswith(where) and message in text for path, text in problems), problems
    assert _counts() == before
    assert _stored_import_files() == []


def test_an_error_in_one_conversation_imports_none_of_them(auth_client):
    conversations = _sample_json("chatgpt_conversations.json")
    conversations[1]["mapping"]["a-img"]["message"]["author"]["role"] = "narrator"

    response = _post_file(auth_client, json.dumps(conversations).encode())

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["[1].mapping.a-img.message.author.role"]
    assert ChatSession.objects.count() == 0


def test_a_lossless_message_with_bad_metadata_is_named(auth_client, user):
    document = json.loads(_export(auth_client, conversation_tree(user)))
    document["messages"][2]["metadata"] = ["not", "an", "object"]
    document["messages"][3]["parent_id"] = 999_999_999

    response = _post_file(auth_client, json.dumps(document).encode())

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"messages[2].metadata"}


def test_a_file_over_the_limit_is_refused(auth_client, settings):
    settings.CHAT_IMPORT_MAX_UPLOAD_SIZE = 1000

    response = _post_file(auth_client, _sample("chatgpt_conversations.json"))

    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert response.json()["max_size"] == 1000
    assert _counts() == (0, 0, 0, 0, 0)


def test_a_service_token_may_not_import(service_client):
    response = _post_file(service_client, _sample("chatgpt_conversations.json"))

    assert response.status_code == 403
    assert response.json()["code"] == "end_user_only"


def test_the_format_may_be_named(auth_client):
    response = _post_file(auth_client, _sample("openwebui_export.json"), format="chatgpt")

    assert response.status_code == 400  # read as ChatGPT's, it has no mapping
    assert "[0].mapping" in response.json()["errors"]


# --- In the background ---------------------------------------------------------------


def _poll(client, job_id: str, *, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(_job_url(job_id)).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']}")


@pytest.mark.django_db(transaction=True)
def test_a_large_file_is_imported_by_a_background_thread(auth_client, user, settings):
    settings.CHAT_IMPORT_INLINE_MAX_SIZE = 100

    response = _post_file(auth_client, _sample("chatgpt_conversations.json"))

    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] in ("pending", "running", "succeeded")
    job = _poll(auth_client, accepted["job_id"])
    assert job["status"] == "succeeded"
    assert job["format"] == "chatgpt"
    assert job["progress"] == {"done": 3, "total": 3}
    assert job["counts"]["sessions_imported"] == 2
    assert job["started_at"] is not None
    assert job["finished_at"] is not None
    assert ChatSession.objects.filter(user=user).count() == 2
    assert _stored_import_files() == []  # deleted once done
    assert ImportJob.objects.get().file_path == ""


@pytest.mark.django_db(transaction=True)
def test_a_wrong_large_file_fails_its_job_and_writes_nothing(auth_client, settings):
    settings.CHAT_IMPORT_INLINE_MAX_SIZE = 10

    response = _post_file(auth_client, _chatgpt_with(_unknown_role))

    assert response.status_code == 202
    job = _poll(auth_client, response.json()["job_id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid"
    assert "[0].mapping.a-1.message.author.role" in job["error"]["errors"]
    assert ChatSession.objects.count() == 0
    assert _stored_import_files() == []


def test_process_imports_runs_jobs_left_without_a_thread(
    auth_client, user, settings, django_capture_on_commit_callbacks
):
    settings.CHAT_IMPORT_INLINE_MAX_SIZE = 100
    settings.CHAT_IMPORT_THREAD = False
    accepted = _post_file(auth_client, _sample("openwebui_export.json")).json()
    assert accepted["status"] == "pending"
    assert len(_stored_import_files()) == 1

    with django_capture_on_commit_callbacks(execute=True):
        call_command("process_imports")

    job = auth_client.get(_job_url(accepted["job_id"])).json()
    assert job["status"] == "succeeded"
    assert job["counts"]["sessions_imported"] == 1
    assert ChatSession.objects.filter(user=user).count() == 1
    assert _stored_import_files() == []


def test_process_imports_takes_over_a_job_whose_worker_died(auth_client, user, settings):
    settings.CHAT_IMPORT_INLINE_MAX_SIZE = 100
    settings.CHAT_IMPORT_THREAD = False
    accepted = _post_file(auth_client, _sample("chatgpt_conversations.json")).json()
    # A worker claimed it, imported the first conversation, then its process died.
    ImportJob.objects.update(
        status=ImportStatus.RUNNING, attempts=1, lease_expires_at=timezone.now() - timedelta(1)
    )
    still_leased = ImportJob.objects.create(
        user=user,
        status=ImportStatus.RUNNING,
        attempts=1,
        file_path="chat-imports/x.json",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )

    call_command("process_imports")

    job = auth_client.get(_job_url(accepted["job_id"])).json()
    assert job["status"] == "succeeded"
    assert ImportJob.objects.get(pk=still_leased.pk).status == ImportStatus.RUNNING
    assert ChatSession.objects.filter(user=user).count() == 2
    assert ImportJob.objects.get(job_id=accepted["job_id"]).attempts == 2


def test_a_job_interrupted_too_often_is_given_up(
    auth_client, settings, django_capture_on_commit_callbacks
):
    settings.CHAT_IMPORT_INLINE_MAX_SIZE = 100
    settings.CHAT_IMPORT_THREAD = False
    accepted = _post_file(auth_client, _sample("chatgpt_conversations.json")).json()
    ImportJob.objects.update(
        status=ImportStatus.RUNNING,
        attempts=settings.CHAT_IMPORT_MAX_ATTEMPTS,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )

    with django_capture_on_commit_callbacks(execute=True):
        call_command("process_imports")

    job = auth_client.get(_job_url(accepted["job_id"])).json()
    assert job["status"] == "failed"
    assert job["error"]["code"] == "import_interrupted"
    assert ChatSession.objects.count() == 0
    assert _stored_import_files() == []


def test_a_job_is_resumed_after_its_last_checkpoint(auth_client, user, settings):
    settings.CHAT_IMPORT_INLINE_MAX_SIZE = 100
    settings.CHAT_IMPORT_THREAD = False
    accepted = _post_file(auth_client, _sample("chatgpt_conversations.json")).json()
    call_command("process_imports")
    finished = ImportJob.objects.get(job_id=accepted["job_id"])
    # Pretend the worker died right after the first conversation's checkpoint.
    second = ChatSession.objects.get(title="Diagram question")
    ChatSession.objects.filter(pk=second.pk).delete()
    restarted = _post_file(auth_client, _sample("chatgpt_conversations.json")).json()
    ImportJob.objects.filter(job_id=restarted["job_id"]).update(
        status=ImportStatus.RUNNING,
        attempts=1,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        conversations_done=1,
        conversations_total=3,
        report={"imported": finished.report["imported"][:1], "skipped": []},
    )

    call_command("process_imports")

    job = auth_client.get(_job_url(restarted["job_id"])).json()
    assert job["status"] == "succeeded"
    assert [item["title"] for item in job["report"]["imported"]] == [
        "RAG 질문",
        "Diagram question",
    ]
    assert ChatSession.objects.filter(user=user).count() == 2


# --- Reading a job ------------------------------------------------------------------------


def test_a_job_is_read_in_one_query(auth_client, django_assert_num_queries):
    job_id = _post_file(auth_client, _sample("chatgpt_conversations.json")).json()["job_id"]

    with django_assert_num_queries(1):
        response = auth_client.get(_job_url(job_id))

    assert response.status_code == 200
    assert response.json()["job_id"] == job_id


def test_another_users_job_is_not_found(auth_client, make_auth_client, other_user):
    job_id = _post_file(auth_client, _sample("chatgpt_conversations.json")).json()["job_id"]

    response = make_auth_client(other_user).get(_job_url(job_id))

    assert response.status_code == 404
    assert response.json()["code"] == "import_not_found"


def test_a_saved_version_1_export_still_imports(auth_client, user):
    """The committed sample was written by the exporter: format 1 stays readable."""
    response = _post_file(auth_client, _sample("chatbot_export.json"))

    assert response.status_code == 201, response.json()
    session = ChatSession.objects.get(user=user)
    messages = list(ChatMessage.objects.filter(session=session).order_by("id"))
    assert [m.content for m in messages if m.on_active_path] == [
        "첫 질문",
        "regenerated answer",
        "edited twice",
    ]
    assert [m.deleted_at is not None for m in messages] == [False, False, False, True, False]
    assert messages[-1].version == 3
    assert messages[2].feedback["rating"] == -1
    assert (session.instructions, session.archived, session.pinned) == ("Be brief.", True, True)
