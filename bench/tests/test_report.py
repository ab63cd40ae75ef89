"""bench/report.py renders the figures of issue 12 (the membership cost, scenario 9),
bench/run.py builds their loads from the seed, and bench/ws_shared.py sums up
the deliveries: fast, without a server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent


@pytest.fixture
def bench(monkeypatch):
    """Import a bench script by name, as bench/run.py runs them (bench/ on the path)."""
    monkeypatch.syspath_prepend(str(BENCH))

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look it up
        spec.loader.exec_module(module)
        return module

    yield load
    sys.modules.pop("ws_fanout", None)


def _http(rps: float, label: str = "a load") -> dict:
    spread = {"median": rps, "min": rps * 0.9, "max": rps * 1.1, "runs": [rps]}
    latency = {"median": 10.0, "min": 9.0, "max": 11.0, "runs": [10.0]}
    return {
        "label": label,
        "rps": spread,
        "p50_ms": latency,
        "p99_ms": latency,
        "errors": 0,
        "requests": 1000,
    }


def _spread(p50: float, p99: float, top: float) -> dict:
    return {"p50": p50, "p99": p99, "max": top}


def _results(**extra) -> dict:
    return {
        "started_at": "2026-12-01T10:00:00+00:00",
        "elapsed_s": 120.0,
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "ram_gib": 4.0,
            "kernel": "6.1",
            "python": "3.11.7",
            "django": "5.2",
            "drf": "3.16",
            "postgresql": "15",
            "redis": "7",
            "gunicorn": "23",
            "uvicorn": "0.30",
            "psycopg": "3.2",
            "channels_redis": "4.2",
            "wrk": "wrk 4.1.0 Copyright",
            "pgbench": "pgbench 15",
        },
        "server_config": {
            "processes": 1,
            "threads_per_wsgi_process": 4,
            "db_pool_max": 4,
            "concurrency": 16,
            "login_concurrency": 4,
            "duration_s": 6.0,
            "runs": 3,
        },
        "seed": {
            "seconds": 30.0,
            "users": 2167,
            "sessions": 10043,
            "messages": 520500,
            "shared_members": 100,
        },
        "http": {
            "wsgi": {
                "s2_solo": _http(300, "2. history, owner-only"),
                "s2_shared": _http(285, "2. history, shared"),
                "s4_solo": _http(250, "4. create, owner-only"),
                "s4_shared": _http(150, "4. create, shared"),
            }
        },
        **extra,
    }


QUERIES = {
    "s2_solo": {"queries": 3, "runs": [3, 3, 3]},
    "s2_shared": {"queries": 3, "runs": [3, 3, 3]},
    "s4_solo": {"queries": 6, "runs": [6, 6, 6]},
    "s4_shared": {"queries": 7, "runs": [7, 7, 7]},
}

S9 = {
    "members": 100,
    "ws_servers": 2,
    "ws_processes": 2,
    "rate_per_s": 10.0,
    "sent_over_s": 9.9,
    "connect_s": 3.2,
    "sockets": 100,
    "messages": 100,
    "deliveries": 10000,
    "lost": 0,
    "response_ms": _spread(40.0, 80.0, 90.0),
    "per_socket_ms": _spread(20.0, 45.5, 60.0),
    "first_ms": _spread(15.0, 30.0, 35.0),
    "all_ms": _spread(25.25, 50.0, 61.0),
    "by_server": [
        {"sockets": 50, **_spread(19.0, 44.0, 58.0)},
        {"sockets": 50, **_spread(21.0, 46.0, 60.0)},
    ],
    "burst": {
        "connect_batch": 25,
        "connect_s": 4.5,
        "messages": 10,
        "lost": 280,
        "refused": 0,
        "refused_why": [],
        "closed": {"1011": 20, "1006": 8},
        "closed_before_posting": 28,
        "open_at_end": 72,
        "lost_on_open_sockets": 0,
    },
}


def _row(text: str, starts: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(starts))


def test_the_membership_cost_is_a_target_row_per_figure_with_its_ratio_and_queries(bench):
    text = bench("report").render(_results(queries=QUERIES), "")

    assert _row(text, "| 2 | history, newest 50, shared session (100 members) by an editor") == (
        "| 2 | history, newest 50, shared session (100 members) by an editor ÷ owner-only "
        "session by its owner | ≥ 90% (within 10%) | 95% **met** |"
    )
    assert _row(text, "| 4 | message create, shared session") == (
        "| 4 | message create, shared session (100 members) by an editor ÷ owner-only session "
        "by its owner | ≥ 90% (within 10%) | 60% **missed** |"
    )
    assert _row(text, "| 2 | queries per request").endswith("| the same | 3 → 3 **met** |")
    assert _row(text, "| 4 | queries per request").endswith("| the same | 6 → 7 **missed** |")
    # And beside each other, server by server.
    assert _row(text, "| message create | WSGI").endswith("| 60% | 6 → 7 | 0, 0 |")
    assert "a shared session of 500 with 100 members, its owner and 99 editors" in text


def test_a_ratio_measured_while_events_were_dropped_is_not_met(bench):
    results = _results(queries=QUERIES)
    http = results["http"]["wsgi"]
    http["s2_shared"]["publish_failures"] = 0
    http["s4_shared"] = {**_http(240, "4. create, shared"), "publish_failures": 4}
    text = bench("report").render(results, "")

    assert _row(text, "| 4 | message create, shared session").endswith(
        "| 96% **missed** (4 publishes failed: events dropped) |"
    )
    assert "), 4 publishes failed | 10.0 / 10.0 |" in _row(text, "| 4. create, shared |")
    assert _row(text, "| message create | WSGI").endswith("| 0, 4 |")


def test_the_membership_rows_say_not_measured_when_the_loads_did_not_run(bench):
    results = _results()
    results["http"]["wsgi"] = {"s1": _http(700)}
    text = bench("report").render(results, "")

    assert _row(text, "| 2 | history, newest 50, shared").endswith("n/a (not measured) |")
    assert _row(text, "| 4 | queries per request").endswith("n/a (not measured) |")
    assert "What membership costs" not in text


def test_scenario_9_reports_every_delivery_figure_and_the_lost_target(bench):
    text = bench("report").render(_results(queries=QUERIES, s9=S9), "")

    assert _row(text, "| 9 | messages lost") == (
        "| 9 | messages lost, 100 members' sockets on 2 uvicorn processes (100 messages at "
        "10/s) | 0 | 0 **met** (gunicorn + uvicorn) |"
    )
    assert "## Scenario 9: a shared session of 100 members (issue 12)" in text
    assert (
        "alternately on 2 uvicorn processes sharing the Redis channel layer. An editor posts "
        "100 messages of 400 bytes to gunicorn at 10 per second" in text
    )
    assert _row(text, "| **`message.created` on all 100 sockets**").endswith(
        "| 25.2 | 50.0 | 61.0 |"
    )
    assert _row(text, "| `message.created` on one socket").endswith(
        "(each of the 10,000 deliveries) | 20.0 | 45.5 | 60.0 |"
    )
    process_2 = _row(text, "| … on the 50 sockets of uvicorn server 2")
    assert process_2.endswith("| 21.0 | 46.0 | 60.0 |")
    assert "- 0 of 10,000 deliveries lost." in text
    # The reconnection burst: its own target.
    assert _row(text, "| 9 | members' sockets refused or closed") == (
        "| 9 | members' sockets refused or closed when all reconnect 25 at a time (as after a "
        "restart) | 0 | 28 **missed** (gunicorn + uvicorn) |"
    )
    assert (
        "all 100 came back 25 at a time, as after a server restart (4.5 s): 0 refused, "
        "28 closed by the server (8 with code 1006, 20 with code 1011); 280 of 1,000 "
        "deliveries of 10 more messages lost." in text
    )

    why = {
        "refused": 1,
        "closed": {"1011": 2},
        "closed_before_posting": 2,
        "open_at_end": 97,
        "lost_on_open_sockets": 0,
    }
    lost = bench("report").render(_results(s9={**S9, **why, "lost": 300}), "")
    assert _row(lost, "| 9 | messages lost").endswith("| 0 | 300 **missed** (gunicorn + uvicorn) |")
    assert (
        "- 300 of 10,000 deliveries lost: 1 sockets refused at connect, 2 closed by the server "
        "(2 with code 1011; 2 before posting began), and the 97 sockets open throughout missed "
        "0 deliveries (events the servers dropped)." in lost
    )


def test_scenario_9_that_failed_says_why(bench):
    text = bench("report").render(_results(s9={"error": ["POST failed"]}), "")

    assert "Not measured: ['POST failed']" in text
    assert "| 9 |" not in text


SEED = {
    "password": "pw",
    "login_emails": ["a@example.com"],
    "main": {"token": "main-token", "sessions": ["m1"]},
    "heavy": {"token": "heavy-token", "huge_session": "h1"},
}


def test_the_membership_loads_read_and_post_as_the_editor_to_both_sessions(bench):
    shared = {
        "members": 100,
        "session": "shared-1",
        "solo_session": "solo-1",
        "editor_token": "editor-token",
    }
    loads = bench("run").loads({**SEED, "shared": shared})

    history, create = loads["s2_shared"], loads["s4_solo"]
    assert history.paths == ["/api/chat-history/sessions/shared-1/messages/?limit=50"]
    assert loads["s2_solo"].paths == ["/api/chat-history/sessions/solo-1/messages/?limit=50"]
    assert create.method == "POST"
    assert create.paths == ["/api/chat-history/sessions/solo-1/messages/"]
    assert loads["s4_shared"].bodies == loads["s4"].bodies  # the same 400-byte message
    assert {loads[k].token for k in ("s2_solo", "s2_shared", "s4_solo", "s4_shared")} == {
        "editor-token"
    }
    # A database seeded before issue 12 (--keep-db) has no such loads.
    assert "s2_shared" not in bench("run").loads(SEED)


def test_a_delivery_summary_counts_what_was_lost_and_times_each_message_from_its_post(bench):
    summary = bench("ws_shared").delivery_summary
    posts = [(1, 10.0, 10.05), (2, 11.0, 11.02)]  # id, sent, answered (s)
    arrivals = [
        {1: 10.010, 2: 11.004},  # socket 0, on the first server
        {1: 10.030},  # socket 1: message 2 never came
        {1: 10.020, 2: 11.006},
    ]

    result = summary(posts, arrivals, servers=2)

    assert (result["sockets"], result["messages"], result["deliveries"]) == (3, 2, 5)
    assert result["lost"] == 1
    # Delivered to all: message 1 only (its last socket after 30 ms).
    assert result["all_ms"] == pytest.approx({"p50": 30.0, "p99": 30.0, "max": 30.0})
    assert result["first_ms"] == pytest.approx({"p50": 4.0, "p99": 10.0, "max": 10.0})
    assert result["per_socket_ms"]["max"] == pytest.approx(30.0)
    assert result["response_ms"]["max"] == pytest.approx(50.0)
    assert [server["sockets"] for server in result["by_server"]] == [2, 1]
    assert result["by_server"][1]["max"] == pytest.approx(30.0)


def test_the_dashboard_loads_read_as_the_day_user_and_the_year_user(bench):
    usage = {"day_token": "day-token", "year_token": "year-token", "year_days": 365}
    loads = bench("run").loads({**SEED, "usage": usage})

    assert loads["s10_day"].paths == loads["s10_year"].paths == ["/api/users/dashboard/"]
    assert (loads["s10_day"].token, loads["s10_year"].token) == ("day-token", "year-token")
    assert "s10_day" not in bench("run").loads(SEED)  # seeded before issue 13
