"""Render bench/RESULTS.md and bench/results.json from one run's results.

Targets are the ratios of issue 6 (and of the issues since: the message tree,
shared sessions), evaluated on the recommended REST server (``PRIMARY``); the
other server's figures and ratios are shown beside them.
``bench/changes.md`` (written by hand: what was changed in the product, with the
before/after figures of the runs that motivated it) is appended verbatim.
"""

from __future__ import annotations

import json
from pathlib import Path

PRIMARY = "wsgi"
SERVER_NAMES = {"wsgi": "WSGI (gunicorn gthread)", "asgi": "ASGI (uvicorn)"}


def _fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _spread(s: dict, digits: int = 0, unit: str = "") -> str:
    """``median (min–max)``."""
    return f"{_fmt(s['median'], digits)}{unit} ({_fmt(s['min'], digits)}–{_fmt(s['max'], digits)})"


def _met(ok: bool | None) -> str:
    return "(not measured)" if ok is None else ("**met**" if ok else "**missed**")


def _members(results: dict) -> int:
    return results.get("seed", {}).get("shared_members", 100)


def membership_rows(results: dict, kind: str, scenario: str) -> list[dict]:
    """Issue 12's membership cost for scenario "2" (history) or "4" (message
    create): the shared session (read or posted to by an editor) ÷ the session
    its reader owns alone, and the queries of each (counted in-process, so the
    same for every server)."""
    what = {"2": "history, newest 50", "4": "message create"}[scenario]
    solo, shared = f"s{scenario}_solo", f"s{scenario}_shared"
    http = results.get("http", {}).get(kind, {})
    r = None
    if solo in http and shared in http and http[solo]["rps"]["median"]:
        r = http[shared]["rps"]["median"] / http[solo]["rps"]["median"]
    members = _members(results)
    queries = results.get("queries", {})
    counts = (queries[solo]["queries"], queries[shared]["queries"]) if shared in queries else None
    failed = sum(http[key].get("publish_failures", 0) for key in (solo, shared) if key in http)
    return [
        {
            "scenario": scenario,
            "figure": f"{what}, shared session ({members} members) by an editor "
            "÷ owner-only session by its owner",
            "value": r,
            "target": "≥ 90% (within 10%)",
            # Not met by dropping the events: a failed publish skips them all for a while.
            "met": None if r is None else r >= 0.9 and not failed,
            "note": f" ({failed} publishes failed: events dropped)" if failed else "",
        },
        {
            "scenario": scenario,
            "figure": f"queries per request of the same {what} (counted in-process): "
            "owner-only → shared",
            "value": f"{counts[0]} → {counts[1]}" if counts else None,
            "unit": "",
            "target": "the same",
            "met": None if counts is None else counts[0] == counts[1],
        },
    ]


def targets(results: dict, kind: str) -> list[dict]:
    """Each target: figure, ratio, target text, met."""
    http = results.get("http", {}).get(kind, {})

    def rps(key: str) -> float | None:
        return http[key]["rps"]["median"] if key in http else None

    def ratio(a: str, b: str) -> float | None:
        return rps(a) / rps(b) if rps(a) and rps(b) else None

    rows = []

    def add(scenario, figure, value, target_text, ok):
        rows.append(
            {
                "scenario": scenario,
                "figure": figure,
                "value": value,
                "target": target_text,
                "met": ok if value is not None else None,  # not measured in this run
            }
        )

    r = ratio("s1", "ceiling")
    add("1", "profile ÷ framework ceiling", r, "≥ 35%", r is not None and r >= 0.35)
    r = ratio("s2_500", "ceiling")
    add("2", "history (500) ÷ framework ceiling", r, "≥ 15%", r is not None and r >= 0.15)
    r = ratio("s2_200k", "s2_500")
    add("2", "history (200,000) ÷ history (500)", r, "≥ 85%", r is not None and r >= 0.85)
    r = ratio("s2_tree", "s2_200k")
    add(
        "2",
        "history, active path of the 200,000-message tree (1,000 branch points) "
        "÷ flat history (200,000)",
        r,
        "≥ 85% (within 15%)",
        r is not None and r >= 0.85,
    )
    half = results.get("s2_half_rate", {}).get(kind)
    if half:
        p99 = half["p99_ms"]["median"]
        rows.append(
            {
                "scenario": "2",
                "figure": f"p99 at half the maximum rate ({_fmt(half['rps']['median'])}/s)",
                "value": p99,
                "unit": "ms",
                "target": "≤ 25 ms",
                "met": p99 <= 25,
            }
        )
    rows += membership_rows(results, kind, "2")
    r = ratio("s3_heavy", "s3_small")
    add("3", "session list, heavy user ÷ small user", r, "≥ 80%", r is not None and r >= 0.8)
    r1, r2 = ratio("s3_small", "ceiling"), ratio("s3_heavy", "ceiling")
    r = min(x for x in (r1, r2) if x is not None) if (r1 or r2) else None
    add(
        "3",
        "session list (lower of the two) ÷ framework ceiling",
        r,
        "≥ 10%",
        r is not None and r >= 0.10,
    )
    r = ratio("s4", "s1")
    add("4", "message create ÷ profile", r, "≥ 50%", r is not None and r >= 0.5)
    rows += membership_rows(results, kind, "4")
    r = ratio("s10_year", "s10_day")
    add(
        "10",
        "dashboard, a year of usage ÷ a day of usage",
        r,
        "≥ 90% (the same)",
        r is not None and r >= 0.9,
    )
    check = results.get("password_check")
    if check and rps("s5"):
        cores = 1  # the server is pinned to one core
        bound = cores / check["median"]
        r = rps("s5") / bound
        add(
            "5",
            f"login ÷ (1 core ÷ {check['median'] * 1000:.0f} ms password check = {bound:.2f}/s)",
            r,
            "≥ 85%",
            r >= 0.85,
        )
    s6 = results.get("s6")
    if s6 and s6.get("server") == kind:
        r = s6["pool_rps"]["median"] / s6["reconnect_rps"]["median"]
        rows.append(
            {
                "scenario": "6",
                "figure": "pool ÷ reconnect per request",
                "value": r,
                "unit": "x",
                "target": "≥ 5x",
                "met": r >= 5,
            }
        )
        new = sum(x["new_backends"] for x in s6["steady_state"])
        rows.append(
            {
                "scenario": "6",
                "figure": "new PostgreSQL backends during pooled runs",
                "value": new,
                "unit": "",
                "target": "0",
                "met": new == 0,
            }
        )
    return rows


def _shared_data(results: dict) -> str:
    members = results["seed"].get("shared_members")
    if not members:  # seeded before issue 12
        return ""
    return (
        f"; a shared session of 500 with {members} members, its owner and {members - 1} "
        "editors, the first of whom owns a session of 500 alone"
    )


def _value(row: dict) -> str:
    unit = row.get("unit", "%")
    if row["value"] is None:
        return "n/a"
    if unit == "%":
        return f"{row['value'] * 100:.0f}%"
    if unit == "x":
        return f"{row['value']:.1f}x"
    if unit == "ms":
        return f"{row['value']:.1f} ms"
    return f"{row['value']}"


def s7_rows(s7: dict) -> list[dict]:
    if not s7 or "bare" not in s7 or "p99_ms" not in s7:
        return []
    bare = s7["bare"]["p99_ms"]
    fan_out = s7["spread_ms"] + s7["bare"]["p50_ms"]
    return [
        {
            "scenario": "7",
            "figure": f"p99 delivery to {s7['sockets']} sockets, timed from the POST, ÷ bare "
            f"layer p99 ({s7['p99_ms']:.1f} ms ÷ {bare:.1f} ms; the fan-out alone, first socket "
            f"to p99 socket plus one layer hop, is {fan_out:.1f} ms = {fan_out / bare:.1f}x)",
            "value": s7["p99_ms"] / bare,
            "unit": "x",
            "target": "≤ 4x",
            "met": s7["p99_ms"] <= 4 * bare,
        },
        {
            "scenario": "7",
            "figure": f"messages lost at {s7['large_sockets']} sockets "
            f"({s7['large_messages']} messages)",
            "value": s7["large_lost"],
            "unit": "",
            "target": "0",
            "met": s7["large_lost"] == 0,
        },
    ]


def s9_rows(s9: dict) -> list[dict]:
    if not s9 or "lost" not in s9:
        return []
    return [
        {
            "scenario": "9",
            "figure": f"messages lost, {s9['members']} members' sockets on {_uvicorns(s9)} "
            f"({s9['messages']} messages at {s9['rate_per_s']:g}/s)",
            "value": s9["lost"],
            "unit": "",
            "target": "0",
            "met": s9["lost"] == 0,
            "servers": "gunicorn + uvicorn",
        },
        *_burst_rows(s9.get("burst")),
    ]


def _uvicorns(s9: dict) -> str:
    """Where the sockets were: "2 uvicorn processes" (one process per server)."""
    servers, processes = s9["ws_servers"], s9.get("ws_processes", s9["ws_servers"])
    if processes == servers:
        return f"{servers} uvicorn processes"
    return f"{servers} uvicorn servers ({processes} processes)"


def _burst_rows(burst: dict | None) -> list[dict]:
    if not burst:
        return []
    dropped = burst["refused"] + sum(burst["closed"].values())
    return [
        {
            "scenario": "9",
            "figure": f"members' sockets refused or closed when all reconnect "
            f"{burst['connect_batch']} at a time (as after a restart)",
            "value": dropped,
            "unit": "",
            "target": "0",
            "met": dropped == 0,
            "servers": "gunicorn + uvicorn",
        }
    ]


def _ms(spread: dict | None) -> str:
    """``p50 | p99 | max`` cells."""
    if not spread:
        return "— | — | —"
    return f"{spread['p50']:.1f} | {spread['p99']:.1f} | {spread['max']:.1f}"


def s9_section(results: dict) -> list[str]:
    """The membership cost, then scenario 9 (issue 12)."""
    s9 = results.get("s9")
    out = _membership_table(results)
    if s9:
        out += [
            "",
            f"## Scenario 9: a shared session of {_members(results)} members (issue 12)",
            "",
        ]
        if "error" in s9:
            out.append(f"Not measured: {s9['error']}")
        else:
            out += _s9_delivery(s9)
    return out


def _s9_delivery(s9: dict) -> list[str]:
    out = [
        f"Every member of one session (its owner and {s9['members'] - 1} editors) opens one "
        f"socket on `ws/chat/<id>/`, one after the other, alternately on {_uvicorns(s9)} "
        f"sharing the Redis channel layer. An editor posts {s9['messages']} messages of 400 "
        f"bytes to gunicorn at {s9['rate_per_s']:g} per second, each POST on schedule whatever "
        "became of the earlier ones (the last left "
        f"{s9['sent_over_s']:.1f} s after the first). All "
        "servers on core 0, the client on core 1. Each message is timed from just before its "
        "POST was sent:",
        "",
        "| figure | p50 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- |",
        f"| the POST answered (201; the events are published before the answer) | "
        f"{_ms(s9['response_ms'])} |",
        f"| `message.created` on the first of the {s9['sockets']} sockets | {_ms(s9['first_ms'])} |",
        f"| `message.created` on one socket (each of the {s9['deliveries']:,} deliveries) | "
        f"{_ms(s9['per_socket_ms'])} |",
    ]
    for n, server in enumerate(s9.get("by_server", [])):
        out.append(
            f"| … on the {server['sockets']} sockets of uvicorn server {n + 1} | "
            f"{_ms(server if 'p50' in server else None)} |"
        )
    out += [
        f"| **`message.created` on all {s9['sockets']} sockets** (per message: its last "
        f"socket) | {_ms(s9['all_ms'])} |",
        "",
        f"- {s9['lost']} of {s9['sockets'] * s9['messages']:,} deliveries lost{_s9_why(s9)}.",
        f"- Connecting the {s9['sockets']} sockets (each its own user and token) took "
        f"{s9['connect_s']:.1f} s.",
        "- One client process reads all the sockets, so the spread from the first socket to "
        "the last includes its own reading of the frames that arrived first.",
    ]
    burst = s9.get("burst")
    if burst:
        closed = ", ".join(f"{n} with code {code}" for code, n in sorted(burst["closed"].items()))
        out.append(
            f"- Then every socket closed and all {s9['sockets']} came back "
            f"{burst['connect_batch']} at a time, as after a server restart "
            f"({burst['connect_s']:.1f} s): {burst['refused']} refused, "
            f"{sum(burst['closed'].values())} closed by the server ({closed or 'none'}); "
            f"{burst['lost']} of {s9['sockets'] * burst['messages']:,} deliveries of "
            f"{burst['messages']} more messages lost."
        )
    return out


def _s9_why(s9: dict) -> str:
    """Where the lost deliveries went: sockets refused or closed, events dropped."""
    if not s9["lost"] or "open_at_end" not in s9:
        return ""
    closed = ", ".join(f"{n} with code {code}" for code, n in sorted(s9["closed"].items()))
    return (
        f": {s9['refused']} sockets refused at connect, {sum(s9['closed'].values())} closed "
        f"by the server ({closed or 'none'}; {s9['closed_before_posting']} before posting "
        f"began), and the {s9['open_at_end']} sockets open throughout missed "
        f"{s9['lost_on_open_sockets']} deliveries (events the servers dropped)"
    )


def _membership_table(results: dict) -> list[str]:
    """Owner-only against shared, on every server measured."""
    http = results.get("http", {})
    kinds = [k for k in ("wsgi", "asgi") if "s2_shared" in http.get(k, {})]
    if not kinds:
        return []
    queries = results.get("queries", {})
    out = [
        "",
        "## What membership costs (issue 12, scenarios 2 and 4)",
        "",
        f"One user reads the newest 50 messages of, and posts to, a session "
        f"of {_members(results)} members where they are an editor and a session of the same "
        "length they own alone, with the same token. Queries per request counted in-process "
        "(Django's test client, `CaptureQueriesContext`; their SQL is in "
        "`bench/.work/queries-*.sql`):",
        "",
        "| figure | server | owner-only req/s | shared req/s | shared ÷ owner-only | "
        "queries owner-only → shared | publishes failed (owner-only, shared) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario, what in (("2", "history, newest 50"), ("4", "message create")):
        solo, shared = f"s{scenario}_solo", f"s{scenario}_shared"
        count = (
            f"{queries[solo]['queries']} → {queries[shared]['queries']}"
            if shared in queries
            else "n/a"
        )
        for kind in kinds:
            a, b = http[kind][solo]["rps"], http[kind][shared]["rps"]
            failed = [http[kind][key].get("publish_failures", 0) for key in (solo, shared)]
            out.append(
                f"| {what} | {SERVER_NAMES[kind]} | {_spread(a)} | {_spread(b)} | "
                f"{b['median'] / a['median'] * 100:.0f}% | {count} | {failed[0]}, {failed[1]} |"
            )
    return out


def render(results: dict, changes: str) -> str:
    m = results["machine"]
    cfg = results.get("server_config", {})
    kinds = [k for k in ("wsgi", "asgi") if k in results.get("http", {})]
    out = [
        "# Benchmark results",
        "",
        f"Generated by `make bench` ({results['elapsed_s'] / 60:.1f} minutes end to end) on "
        f"{results['started_at'].replace('T', ' ').replace('+00:00', ' UTC')}. "
        "Every figure is the median of "
        f"{cfg.get('runs', '?')} runs with the range (min–max) in brackets; the runs of all "
        "figures are interleaved, so a slow minute of the machine touches every figure alike.",
        "",
        "## Machine and setup",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gib']} GiB; Linux {m['kernel']}",
        f"- Python {m['python']}, Django {m['django']}, DRF {m['drf']}, "
        f"PostgreSQL {m['postgresql']}, Redis {m['redis']}",
        f"- gunicorn {m['gunicorn']}, uvicorn {m['uvicorn']}, psycopg {m['psycopg']}, "
        f"channels-redis {m['channels_redis']}; {m['wrk'].split(' Copyright')[0]}; {m['pgbench']}",
        f"- Server pinned to core 0 (`taskset -c 0`): {cfg.get('processes')} process; WSGI = "
        f"gunicorn `-k gthread --threads {cfg.get('threads_per_wsgi_process')}`, ASGI = uvicorn "
        f"(uvloop, httptools); `DJANGO_DEBUG=False`, psycopg pool (max "
        f"{cfg.get('db_pool_max')} per process), Redis cache and channel layer, request log on.",
        f"- Load pinned to core 1: wrk, 1 thread, {cfg.get('concurrency')} connections "
        f"({cfg.get('login_concurrency')} for login), {cfg.get('duration_s'):g} s per run after a "
        "warm-up; pgbench at the same concurrency. PostgreSQL and Redis are not pinned: on two "
        "cores they share the machine with both, as a database on the same host would.",
        f"- Data: {results['seed']['users']:,} users, {results['seed']['sessions']:,} sessions, "
        f"{results['seed']['messages']:,} messages of 400 bytes (the main user: 20 sessions of "
        "500; the heavy user: one session of 200,000 and 19 of 500; the tree user: one session "
        "of 200,000 with 1,000 branch points, its active path crossing every one; 2,000 other "
        f"users with 5 sessions of 10{_shared_data(results)}), seeded with COPY in "
        f"{results['seed']['seconds']:.0f} s, counters checked against the rows.",
        "",
        "## Targets",
        "",
        f"Evaluated on the recommended REST server, {SERVER_NAMES[PRIMARY]}; the ASGI column "
        "shows the same ratios under uvicorn.",
        "",
        "| # | figure | target | " + " | ".join(SERVER_NAMES[k] for k in kinds) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in kinds) + " |",
    ]
    per_kind = {kind: targets(results, kind) for kind in kinds}
    primary_rows = per_kind.get(PRIMARY, [])
    for i, row in enumerate(primary_rows):
        cells = []
        for kind in kinds:
            match = [r for r in per_kind[kind] if r["figure"] == row["figure"]]
            if kind != PRIMARY and not match:
                match = (
                    [per_kind[kind][i]]
                    if i < len(per_kind[kind]) and per_kind[kind][i]["scenario"] == row["scenario"]
                    else []
                )
            cells.append(
                f"{_value(match[0])} {_met(match[0]['met'])}{match[0].get('note', '')}"
                if match
                else "—"
            )
        out.append(
            f"| {row['scenario']} | {row['figure']} | {row['target']} | " + " | ".join(cells) + " |"
        )
    for row in s7_rows(results.get("s7", {})) + s9_rows(results.get("s9", {})):
        out.append(
            f"| {row['scenario']} | {row['figure']} | {row['target']} | {_value(row)} "
            f"{_met(row['met'])} ({row.get('servers', 'ASGI')}) |" + " |" * (len(kinds) - 1)
        )
    out += ["", "## Throughput and latency", ""]
    out.append(
        "| figure | "
        + " | ".join(f"{SERVER_NAMES[k]} req/s | p50 / p99 ms" for k in kinds)
        + (" | ASGI ÷ WSGI |" if len(kinds) == 2 else " |")
    )
    out.append("| --- |" + " --- | --- |" * len(kinds) + (" --- |" if len(kinds) == 2 else ""))
    keys = list(results["http"][kinds[0]].keys())
    for key in keys:
        label = results["http"][kinds[0]][key]["label"]
        cells = []
        for kind in kinds:
            h = results["http"][kind][key]
            errors = f", {h['errors']} errors" if h["errors"] else ""
            if h.get("publish_failures"):
                errors += f", {h['publish_failures']} publishes failed"
            cells.append(f"{_spread(h['rps'])}{errors}")
            cells.append(f"{h['p50_ms']['median']:.1f} / {h['p99_ms']['median']:.1f}")
        if len(kinds) == 2:
            a, w = (results["http"][k][key]["rps"]["median"] for k in ("asgi", "wsgi"))
            cells.append(f"{a / w * 100:.0f}%")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    pg = results.get("pgbench")
    if pg:
        out += [
            "",
            "Database ceiling (pgbench, `-M prepared`, same concurrency, pinned like wrk):",
            "",
            "| pgbench script | transactions/s | mean latency ms |",
            "| --- | --- | --- |",
            f"| newest 50 messages of a session (`WHERE session_id = :s ORDER BY id DESC LIMIT 50`) "
            f"| {_spread(pg['select']['rps'])} | {pg['select']['mean_ms']['median']:.2f} |",
            f"| one 400-byte row into a copy of `chat_messages` (same indexes and checks) "
            f"| {_spread(pg['insert']['rps'])} | {pg['insert']['mean_ms']['median']:.2f} |",
        ]
        if PRIMARY in results["http"]:
            h = results["http"][PRIMARY]
            lines = []
            if "s2_500" in h:
                lines.append(
                    f"history (500) is {h['s2_500']['rps']['median'] / pg['select']['rps']['median'] * 100:.0f}% of the select ceiling"
                )
            if "s4" in h:
                lines.append(
                    f"message create is {h['s4']['rps']['median'] / pg['insert']['rps']['median'] * 100:.0f}% of the insert ceiling"
                )
            if lines:
                out += ["", f"On {SERVER_NAMES[PRIMARY]}, " + "; ".join(lines) + "."]
    half = results.get("s2_half_rate")
    if half:
        out += [
            "",
            "Scenario 2 at half the maximum rate: each connection waits an exponentially "
            "distributed time before each request (wrk's `delay()`), so arrivals are Poisson. "
            "The last column is the p99 of the same requests as the request log timed them "
            "inside Django; the difference is time spent queued in the server before Django "
            "saw the request:",
            "",
            "| server | offered | achieved req/s | p50 ms | p99 ms | p99 inside Django ms |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for kind, h in half.items():
            out.append(
                f"| {SERVER_NAMES[kind]} | {h['target_rps']:.0f}/s | {_spread(h['rps'])} | "
                f"{h['p50_ms']['median']:.1f} | {_spread(h['p99_ms'], 1)} | "
                f"{_spread(h['server_p99_ms'], 1)} |"
            )
    check = results.get("password_check")
    if check:
        p = check["params"]
        out += [
            "",
            f"Scenario 5: one password check ({check['hasher']}, time_cost "
            f"{p['time_cost']}, memory_cost {p['memory_cost']} KiB, parallelism "
            f"{p['parallelism']}) takes {check['median'] * 1000:.0f} ms "
            f"({check['min'] * 1000:.0f}–{check['max'] * 1000:.0f}) on the server's core, "
            f"so one core can log in at most {1 / check['median']:.2f} users per second.",
        ]
    s6 = results.get("s6")
    if s6:
        out += [
            "",
            f"## Scenario 6: connection handling ({SERVER_NAMES[s6['server']]}, profile)",
            "",
            "| configuration | req/s | p99 ms |",
            "| --- | --- | --- |",
            f"| psycopg pool (`DB_POOL=True`) | {_spread(s6['pool_rps'])} | {s6['pool_p99_ms']['median']:.1f} |",
            f"| new connection per request (`DB_POOL=False`, `DB_CONN_MAX_AGE=0`) | {_spread(s6['reconnect_rps'])} | {s6['reconnect_p99_ms']['median']:.1f} |",
            "",
            "Steady state. During each pooled run, `pg_stat_activity` was sampled every 50 ms: "
            "the backends of the bench database before the run, every backend seen during it, "
            "and those not there before (all server processes share the database, so the "
            "idle pools of the other servers are counted too). For the reconnecting server, "
            "the sessions PostgreSQL opened during its run (`pg_stat_database.sessions`) "
            "against the requests served:",
            "",
            "| run | pooled: backends before → after | backends seen | new backends | reconnecting: sessions opened / requests |",
            "| --- | --- | --- | --- | --- |",
        ]
        for i, st in enumerate(s6["steady_state"], 1):
            out.append(
                f"| {i} | {st['backends_before']} → {st['backends_after']} | "
                f"{st['backends_seen']} | {st['new_backends']} | "
                f"{st['reconnect_sessions']:,} / {st['reconnect_requests']:,} |"
            )
    s7 = results.get("s7")
    if s7:
        out += ["", "## Scenario 7: WebSocket fan-out (uvicorn, Redis channel layer)", ""]
        if "error" in s7:
            out.append(f"Not measured: {s7['error']}")
        elif "p99_ms" in s7:
            b = s7["bare"]
            out += [
                "| figure | p50 ms | p99 ms |",
                "| --- | --- | --- |",
                f"| bare channel layer: `group_send` to {b['receivers']} channels of one process "
                f"(median of {b['messages']} messages) | {b['p50_ms']:.1f} | {b['p99_ms']:.1f} |",
                f"| `POST` a message → `message.created` on each of {s7['sockets']} sockets "
                f"(median of {s7['messages']} messages) | {s7['p50_ms']:.1f} | {s7['p99_ms']:.1f} |",
                f"| the same with {s7['large_sockets']} sockets | {s7['large']['p50_ms']:.1f} | "
                f"{s7['large']['p99_ms']:.1f} |",
                "",
                f"- Where the time goes with {s7['sockets']} sockets (medians): the POST was "
                f"answered after {s7['response_ms']:.1f} ms, the first socket had the event after "
                f"{s7['first_ms']:.1f} ms, and the 99th-percentile socket {s7['spread_ms']:.1f} ms "
                "after the first (one process relaying to each socket in turn).",
                f"- {s7['large_sockets']} sockets: {s7['large_lost']} of "
                f"{s7['large_sockets'] * s7['large_messages']:,} deliveries lost.",
                f"- Memory per idle socket: {s7['rss_per_socket_kib']:.0f} KiB (server RSS "
                f"{s7['rss_small_kib'] / 1024:.0f} MiB with {s7['sockets']} sockets, "
                f"{s7['rss_large_kib'] / 1024:.0f} MiB with {s7['large_sockets']}).",
                f"- Connecting took {s7['connect_s']:.1f} s for the first {s7['sockets']} sockets "
                f"and {s7['large_connect_s']:.1f} s more for the next "
                f"{s7['large_sockets'] - s7['sockets']} (each join is announced to the sockets "
                "already there, and each newcomer gets the presence snapshot).",
            ]
    if len(kinds) == 2 and results["http"]["wsgi"]:
        http = results["http"]
        shares = [
            http["asgi"][k]["rps"]["median"] / http["wsgi"][k]["rps"]["median"]
            for k in http["wsgi"]
            if k in http["asgi"]
        ]
        slower = (1 - sum(shares) / len(shares)) * 100
        out += [
            "",
            "## Scenario 8: ASGI vs WSGI",
            "",
            f"Same core, same number of processes: across the HTTP figures above, uvicorn "
            f"serves on average {sum(shares) / len(shares) * 100:.0f}% of gunicorn's "
            f"throughput ({slower:.0f}% slower). Every view is synchronous, so under ASGI "
            "each request crosses into a worker thread and back (`sync_to_async`); gthread "
            "runs it on its own thread directly. Hence the recommendation: gunicorn gthread "
            "for the REST API, uvicorn only for `/ws/`."
            if slower > 20
            else f"Same core, same number of processes: uvicorn serves on average "
            f"{sum(shares) / len(shares) * 100:.0f}% of gunicorn's throughput.",
        ]
    out += s9_section(results)
    if changes.strip():
        out += ["", changes.strip()]
    out.append("")
    return "\n".join(out)


def write_report(results: dict, bench: Path, out: Path | None = None) -> None:
    """Write RESULTS.md and results.json into ``out`` (default: ``bench``)."""
    out = out or bench
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    changes_file = bench / "changes.md"
    changes = changes_file.read_text() if changes_file.exists() else ""
    (out / "RESULTS.md").write_text(render(results, changes))


if __name__ == "__main__":  # re-render from bench/results.json
    here = Path(__file__).resolve().parent
    write_report(json.loads((here / "results.json").read_text()), here)
