"""What LangChain expects of a ``BaseChatMessageHistory``, as pytest checks.

``langchain-tests`` (LangChain's standard test suites) has none for chat
message histories (it covers chat models, embeddings, tools, retrievers,
vector stores, caches, stores and indexers), so these are the equivalent:
the base class's contract (``messages``, ``add_message``/``add_messages``,
the ``add_user_message``/``add_ai_message`` helpers, the async defaults
``aget_messages``/``aadd_messages``/``aclear``, ``clear``, ``str()``) and a
lossless round trip of every message kind the backend can hold.

Subclass :class:`HistoryConformance` and give it a ``history`` fixture that
returns a fresh, empty history (and ``other_history``: another session's).
"""

from __future__ import annotations

import pytest
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    get_buffer_string,
)

ROUND_TRIP = [
    SystemMessage(content="You answer in one sentence."),
    HumanMessage(content="RAG가 무엇인가요?", id="human-1", name="kim"),
    AIMessage(
        content="RAG는 검색 증강 생성입니다.",
        id="lc_run--8c1d",
        response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"},
        usage_metadata={"input_tokens": 12, "output_tokens": 9, "total_tokens": 21},
        additional_kwargs={"refusal": None, "trace": {"step": 2}},
    ),
    HumanMessage(content=[{"type": "text", "text": "Two "}, {"type": "text", "text": "blocks"}]),
    AIMessage(
        content="I will search.",
        tool_calls=[{"name": "search", "args": {"q": "RAG"}, "id": "call_1"}],
    ),
    ChatMessage(role="assistant", content="A chat message with a role."),
]


class HistoryConformance:
    """The checks; the subclass provides ``history`` and ``other_history``."""

    def test_is_a_langchain_history(self, history):
        assert isinstance(history, BaseChatMessageHistory)

    def test_a_new_history_is_empty(self, history):
        assert history.messages == []

    def test_add_message_then_messages(self, history):
        history.add_message(HumanMessage(content="hello"))
        history.add_message(AIMessage(content="hi there"))

        assert history.messages == [HumanMessage(content="hello"), AIMessage(content="hi there")]

    def test_add_messages_round_trips_every_kind_losslessly(self, history):
        history.add_messages(ROUND_TRIP)

        assert history.messages == ROUND_TRIP

    def test_messages_keep_their_order_across_calls(self, history):
        for index in range(5):
            history.add_messages(
                [HumanMessage(content=f"q{index}"), AIMessage(content=f"a{index}")]
            )

        assert [m.content for m in history.messages] == [
            text for index in range(5) for text in (f"q{index}", f"a{index}")
        ]

    def test_the_convenience_helpers(self, history):
        history.add_user_message("from a string")
        history.add_ai_message("an answer")
        history.add_user_message(HumanMessage(content="from a message"))

        assert [(m.type, m.content) for m in history.messages] == [
            ("human", "from a string"),
            ("ai", "an answer"),
            ("human", "from a message"),
        ]

    def test_a_chunk_is_stored_as_its_message(self, history):
        chunk = AIMessageChunk(content="stream", id="c-1") + AIMessageChunk(content="ed")
        history.add_message(chunk)

        assert history.messages == [AIMessage(content="streamed", id="c-1")]

    def test_adding_the_same_message_twice_stores_it_once(self, history):
        answer = AIMessage(content="once", id="lc_run--same")
        history.add_messages([answer])
        history.add_messages([answer])

        assert history.messages == [answer]

    def test_str_is_the_buffer_string(self, history):
        history.add_messages([HumanMessage(content="q"), AIMessage(content="a")])

        assert str(history) == get_buffer_string(history.messages)
        assert str(history) == "Human: q\nAI: a"

    def test_clear_empties_the_history_and_it_can_be_used_again(self, history):
        history.add_messages([HumanMessage(content="q"), AIMessage(content="a")])

        history.clear()
        assert history.messages == []

        history.add_message(HumanMessage(content="again"))
        assert history.messages == [HumanMessage(content="again")]

    def test_histories_of_two_sessions_are_apart(self, history, other_history):
        history.add_message(HumanMessage(content="mine"))
        other_history.add_message(HumanMessage(content="theirs"))
        history.clear()

        assert history.messages == []
        assert other_history.messages == [HumanMessage(content="theirs")]

    @pytest.mark.asyncio
    async def test_async_defaults(self, history):
        await history.aadd_messages([HumanMessage(content="async q")])
        await history.aadd_messages([AIMessage(content="async a")])

        assert await history.aget_messages() == [
            HumanMessage(content="async q"),
            AIMessage(content="async a"),
        ]

        await history.aclear()
        assert await history.aget_messages() == []
