"""The LangChain history's conformance checks against the real server, and what
``clear`` leaves behind there."""

from __future__ import annotations

import pytest
from chatbot_client.langchain import ChatbotMessageHistory
from langchain_core.messages import AIMessage, HumanMessage

from ..conformance import HistoryConformance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def history(client, user):
    return ChatbotMessageHistory(client, client.create_session(user.id).session_id)


@pytest.fixture
def other_history(client, user):
    return ChatbotMessageHistory(client, client.create_session(user.id).session_id)


class TestConformanceOnTheRealServer(HistoryConformance):
    pass


def test_clear_moves_the_messages_to_the_trash_and_keeps_the_session(client, history, user):
    history.add_messages([HumanMessage("q"), AIMessage("a")])
    history.clear()

    session = client.get_session(history.session_id)
    assert session.message_count == 0
    assert history.messages == []
    history.add_message(HumanMessage("after the clear"))
    assert [m.content for m in client.iter_messages(history.session_id)] == ["after the clear"]


def test_usage_of_ai_messages_can_be_recorded_with_them(client, user):
    factories = pytest.importorskip("users.tests.factories")
    if not hasattr(factories, "ProviderKeyFactory"):
        pytest.skip("The provider keys are not in this tree yet.")
    key = factories.ProviderKeyFactory(user=user, provider="openai")
    history = ChatbotMessageHistory(
        client,
        client.create_session(user.id).session_id,
        record_usage=True,
        provider="openai",
        key_id=key.pk,
    )
    answer = AIMessage(
        "answer",
        id="lc_run--usage",
        response_metadata={"model_name": "gpt-4o-mini"},
        usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
    )

    history.add_messages([HumanMessage("q"), answer])
    history.add_messages([answer])  # a retry of the same message counts nothing more

    assert history.messages == [HumanMessage("q"), answer]
    assert client.get_budget(user.id, key_id=key.pk).key.tokens_used == 10
