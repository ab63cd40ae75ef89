"""The LangChain chat history: conversions, and the conformance checks on a fake server."""

from __future__ import annotations

import json

import httpx
import pytest
from chatbot_client import ChatbotClient, Message
from chatbot_client.langchain import (
    ChatbotMessageHistory,
    UnsupportedMessageError,
    to_langchain_message,
    to_message_create,
)
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from .conformance import HistoryConformance
from .fake_server import FakeChatServer
from .test_models import MESSAGE


@pytest.fixture
def server():
    return FakeChatServer()


@pytest.fixture
def client(server):
    with ChatbotClient("http://testserver", "svc", transport=httpx.MockTransport(server)) as c:
        yield c


@pytest.fixture
def history(server, client):
    return ChatbotMessageHistory(client, server.create_session())


@pytest.fixture
def other_history(server, client):
    return ChatbotMessageHistory(client, server.create_session())


class TestConformanceOnAFakeServer(HistoryConformance):
    pass


def test_roles_content_and_metadata_of_an_ai_message():
    create = to_message_create(
        AIMessage(
            content="answer",
            id="lc_run--1",
            response_metadata={"model_name": "gpt-4o-mini"},
            usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
        )
    )

    assert create["role"] == "assistant"
    assert create["content"] == "answer"
    assert create["client_message_id"] == "lc:lc_run--1"
    metadata = create["metadata"]
    assert metadata["model"] == "gpt-4o-mini"  # the backend groups ratings by it
    assert metadata["tokens_used"] == 15  # the backend's stats sum it
    assert "usage" not in metadata  # nothing recorded in the ledger unless asked
    assert metadata["langchain"]["type"] == "ai"
    assert "content" not in metadata["langchain"]["data"]  # not stored twice
    json.dumps(metadata)


def test_record_usage_puts_openai_usage_beside_the_model():
    create = to_message_create(
        AIMessage(
            content="answer",
            response_metadata={"model": "claude-x"},
            usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
        ),
        record_usage=True,
        provider="anthropic",
    )
    assert create["metadata"]["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
    }
    assert create["metadata"]["provider"] == "anthropic"
    assert create["client_message_id"] is None


@pytest.mark.parametrize(
    ("message", "role"),
    [(HumanMessage("q"), "user"), (SystemMessage("s"), "system"), (AIMessage("a"), "assistant")],
)
def test_roles(message, role):
    assert to_message_create(message)["role"] == role


@pytest.mark.parametrize(
    "message",
    [
        ToolMessage(content="42", tool_call_id="call_1"),
        AIMessage(content="", tool_calls=[{"name": "f", "args": {}, "id": "call_1"}]),
        HumanMessage(content="   "),
    ],
)
def test_what_the_backend_cannot_hold_is_refused(message):
    with pytest.raises(UnsupportedMessageError):
        to_message_create(message)


def test_an_unsupported_message_writes_nothing(history, server):
    with pytest.raises(UnsupportedMessageError):
        history.add_messages([HumanMessage("q"), ToolMessage(content="42", tool_call_id="c")])
    assert server.messages == {}


def test_unsupported_messages_may_be_skipped(server, client):
    history = ChatbotMessageHistory(client, server.create_session(), unsupported="skip")
    history.add_messages(
        [HumanMessage("q"), ToolMessage(content="42", tool_call_id="c"), AIMessage("a")]
    )
    assert history.messages == [HumanMessage("q"), AIMessage("a")]


def test_a_message_written_by_someone_else_reads_as_its_role():
    for role, kind in [("user", HumanMessage), ("assistant", AIMessage), ("system", SystemMessage)]:
        message = to_langchain_message(Message.from_json({**MESSAGE, "role": role, "metadata": {}}))
        assert type(message) is kind
        assert message.content == MESSAGE["content"]


def test_an_edited_message_reads_with_its_new_content():
    stored = to_message_create(HumanMessage(content=[{"type": "text", "text": "old"}]))
    message = Message.from_json({**MESSAGE, "content": "new", "metadata": stored["metadata"]})
    assert to_langchain_message(message).content == "new"


def test_max_messages_reads_only_the_newest(server, client):
    history = ChatbotMessageHistory(client, server.create_session(), max_messages=3)
    history.add_messages([HumanMessage(f"m{i}") for i in range(5)])
    assert [m.content for m in history.messages] == ["m2", "m3", "m4"]


def test_clear_trashes_the_messages_one_by_one(history, server):
    history.add_messages([HumanMessage("q"), AIMessage("a")])
    history.clear()

    deletes = [r for r in server.requests if r.method == "DELETE"]
    assert [r.url.path for r in deletes] == [
        "/api/chat-history/messages/1/",
        "/api/chat-history/messages/2/",
    ]
    assert all("permanent" not in r.url.params for r in deletes)
    assert all(m["deleted_at"] for m in server.messages.values())  # in the trash, not gone


def test_permanent_clear(server, client):
    history = ChatbotMessageHistory(client, server.create_session(), permanent_clear=True)
    history.add_messages([HumanMessage("q")])
    history.clear()
    assert server.requests[-1].url.params["permanent"] == "true"


def test_the_client_reads_a_page_as_langchain_messages(server, client):
    session_id = server.create_session(instructions="Be brief.")
    ChatbotMessageHistory(client, session_id).add_messages([HumanMessage("q"), AIMessage("a")])

    assert client.get_langchain_messages(session_id) == [HumanMessage("q"), AIMessage("a")]
    assert client.get_langchain_messages(session_id, limit=1, instructions=True) == [
        SystemMessage("Be brief."),
        AIMessage("a"),
    ]
