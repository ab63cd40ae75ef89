"""Render bench/RESULTS.md and bench/results.json from one run's results.

Targets are the ratios of issue 6, evaluated on the recommended REST server
(``PRIMARY``); the other server's figures and ratios are shown beside them.
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
        f"users with 5 sessions of 10), seeded with COPY in {results['seed']['seconds']:.0f} s, "
        "counters checked against the rows.",
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
            cells.append(f"{_value(match[0])} {_met(match[0]['met'])}" if match else "—")
        out.append(
            f"| {row['scenario']} | {row['figure']} | {row['target']} | " + " | ".join(cells) + " |"
        )
    for row in s7_rows(results.get("s7", {})):
        out.append(
            f"| 7 | {row['figure']} | {row['target']} | {_value(row)} {_met(row['met'])} (ASGI) |"
            + " |" * (len(kinds) - 1)
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
    if len(kinds) == 2:
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
