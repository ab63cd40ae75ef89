"""`make bench`: measure the API beside its ceilings, on this machine, in one run.

Steps (each logged with its time): install what is missing (wrk), create a fresh
PostgreSQL database, migrate, seed (bench/seed.py), time one password check,
measure the database ceiling with pgbench, start the servers in their production
configuration pinned to core 0, drive them with wrk pinned to core 1, run the
WebSocket fan-out (scenario 7) and the shared session's delivery to its 100
members on two uvicorn processes (scenario 9), and write bench/RESULTS.md and
bench/results.json.

Every HTTP figure is the median of RUNS runs, and the runs of all figures are
interleaved (round 1 of everything, then round 2, ...) so that a slow minute of
a shared machine spreads over every figure instead of skewing one ratio.

    python bench/run.py                 # the full run (what `make bench` does)
    python bench/run.py --quick         # one short round, for trying things out
    python bench/run.py --only s1,s4 --servers wsgi --keep-db
    python bench/run.py --only s2_solo,s2_shared,s4_solo,s4_shared --skip pgbench,s6,s7
    python bench/run.py --only none --servers wsgi --skip pgbench,s6,s7 --keep-db  # no HTTP load:
                                        # scenario 9 alone

Only a full run (both servers, every load, three rounds) writes bench/RESULTS.md;
a partial one writes its report to bench/.work/ instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
VENV_BIN = Path(sys.executable).parent
SERVER_CPU, CLIENT_CPU = "0", "1"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
DB_NAME = os.environ.get("BENCH_DB", "bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PORTS = {"wsgi": 8101, "asgi": 8102, "wsgi-nopool": 8103, "asgi-nopool": 8104, "asgi-2": 8105}

# Server model (the README's recommendation follows from the numbers): one
# process per core; gthread threads overlap the database round trips.
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "1"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
POOL_MAX = int(os.environ.get("BENCH_POOL_MAX", str(max(THREADS, 4))))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
LOGIN_CONCURRENCY = 4

STARTED = time.monotonic()


def log(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {text}", flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, text=True, **kwargs)
    except subprocess.CalledProcessError as failed:
        if failed.stderr:  # captured, so not shown yet
            sys.stderr.write(failed.stderr)
        raise


# --- Tools ----------------------------------------------------------------------


def _apt_install(package: str) -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "env": env}
    if subprocess.run([*sudo, "apt-get", "install", "-y", package], **quiet).returncode:
        run([*sudo, "apt-get", "update"], **quiet)
        run([*sudo, "apt-get", "install", "-y", package], **quiet)


def ensure_tools() -> None:
    for tool, package in (
        ("wrk", "wrk"),
        ("pgbench", "postgresql-client"),
        ("taskset", "util-linux"),
    ):
        if shutil.which(tool) is None:
            log(f"installing {package} (for {tool})")
            _apt_install(package)


# --- Database -------------------------------------------------------------------


def pg_connect(dbname: str):
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True)


def database_url(dbname: str = DB_NAME) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


def recreate_database() -> None:
    with pg_connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def base_env() -> dict[str, str]:
    """The production configuration, plus what a benchmark on loopback needs."""
    from cryptography.fernet import Fernet

    # Fresh secrets per seeded database (kept beside it for --keep-db: the seed's
    # tokens are signed with them).
    secrets_file = WORK / "secrets.json"
    if not secrets_file.exists():
        secrets_file.write_text(
            json.dumps(
                {
                    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
                    "ENCRYPTION_KEY": Fernet.generate_key().decode(),
                }
            )
        )
    env = dict(os.environ)
    env.update(json.loads(secrets_file.read_text()))
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="False",
        # Plain HTTP on loopback: no TLS to redirect to.
        DJANGO_SECURE_SSL_REDIRECT="False",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url(),
        DB_POOL="True",
        DB_POOL_MIN_SIZE="2",
        DB_POOL_MAX_SIZE=str(POOL_MAX),
        REDIS_URL=REDIS_URL,
        # Raised so that login and writes can be measured at all (defaults:
        # 20/min, 5/min, 30/min; 40 messages/min): the checks still run, so
        # their cost is in the numbers.
        THROTTLE_LOGIN_CLIENT="1000000/min",
        THROTTLE_LOGIN_ACCOUNT="1000000/min",
        THROTTLE_LOGIN_ACCOUNT_TOTAL="1000000/min",
        THROTTLE_MESSAGES="1000000/min",
        BENCH_ENDPOINTS="True",
        LOG_LEVEL="INFO",
        PYTHONHASHSEED="0",
    )
    return env


# --- Servers --------------------------------------------------------------------


@dataclass
class Server:
    name: str
    kind: str  # "wsgi" or "asgi"
    port: int
    env: dict[str, str]
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.kind == "wsgi":
            return [
                str(VENV_BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--worker-class",
                "gthread",
                "--workers",
                str(PROCESSES),
                "--threads",
                str(THREADS),
                "--keep-alive",
                "30",
            ]
        return [
            str(VENV_BIN / "uvicorn"),
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(PROCESSES),
            "--lifespan",
            "off",
            "--no-access-log",
            "--timeout-keep-alive",
            "30",
        ]

    def start(self) -> None:
        logfile = open(self.log, "w")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *self.command()],
            cwd=ROOT,
            env=self.env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited; see {logfile.name}")
            try:
                with urllib.request.urlopen(self.base + "/api/bench/ceiling/", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"{self.name} did not answer within 60 s")

    def pids(self) -> list[int]:
        """The server's processes (the master and its workers)."""
        found = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            found += [int(pid) for pid in children.read_text().split()]
        except OSError:
            pass
        return found

    def rss_kib(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        return total

    @property
    def log(self) -> Path:
        return WORK / f"server-{self.name}.log"

    def request_times_ms(self, since: int, fragment: str) -> list[float]:
        """Durations the request log recorded inside Django, from byte ``since`` on."""
        with self.log.open("rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        pattern = re.compile(r" (?:GET|POST) (\S+) \d{3} ([\d.]+)ms ")
        return [float(m[2]) for m in pattern.finditer(text) if fragment in m[1]]

    def publish_failures(self, since: int) -> int:
        """Publishes the log says failed, from byte ``since`` on. Each drops its
        events and opens the breaker (``realtime.publish``), which drops every
        event for the next ``REALTIME_PUBLISH_BACKOFF`` seconds too."""
        with self.log.open("rb") as f:
            f.seek(since)
            return f.read().count(b" could not publish ")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# --- Load -----------------------------------------------------------------------


@dataclass
class Load:
    key: str
    label: str
    paths: list[str]
    token: str | None = None
    method: str = "GET"
    bodies: list[str] = field(default_factory=list)
    concurrency: int = CONCURRENCY
    duration: float = 6.0

    def files(self) -> dict[str, str]:
        paths = WORK / f"paths-{self.key}.txt"
        paths.write_text("\n".join(self.paths) + "\n")
        env = {"BENCH_METHOD": self.method, "BENCH_PATHS": str(paths)}
        if self.bodies:
            bodies = WORK / f"bodies-{self.key}.txt"
            bodies.write_text("\n".join(self.bodies) + "\n")
            env["BENCH_BODIES"] = str(bodies)
        if self.token:
            env["BENCH_TOKEN"] = self.token
        return env


def wrk(server: Server, load: Load, *, duration: float | None = None, delay_ms: float = 0) -> dict:
    env = {**os.environ, **load.files()}
    if delay_ms:
        env["BENCH_DELAY_MS"] = f"{delay_ms:.0f}"
    seconds = duration or load.duration
    result = subprocess.run(
        [
            "taskset",
            "-c",
            CLIENT_CPU,
            "wrk",
            "-t1",
            f"-c{load.concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "wrk" / "load.lua"),
            server.base,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["errors"] = sum(
        data[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors")
    )
    data["timeouts"] = data["timeouts"]
    if data["errors"]:
        log(f"  !! {server.name} {load.key}: {data['errors']} errors; see the server log")
    return data


def loads(seed: dict) -> dict[str, Load]:
    main, heavy = seed["main"], seed["heavy"]
    content = (
        "How do I reset the vector index after re-chunking the uploaded contract? "
        "The assistant should cite the clause numbers it used and keep the answer short. "
    )
    content = (content * 4)[:400]
    login_bodies = [
        json.dumps({"email": email, "password": seed["password"]}) for email in seed["login_emails"]
    ]
    history = "/api/chat-history/sessions/{}/messages/?limit=50"
    create = "/api/chat-history/sessions/{}/messages/"
    message = [json.dumps({"role": "user", "content": content})]
    tree = seed.get("tree")  # absent from a database seeded before issue 11 (--keep-db)
    shared = seed.get("shared")  # and this before issue 12
    usage = seed.get("usage")  # and this before issue 13
    return {
        "ceiling": Load(
            "ceiling", "framework ceiling (plain Django JSON view)", ["/api/bench/ceiling/"]
        ),
        "s1": Load(
            "s1", "1. profile (authenticated trivial DRF)", ["/api/users/profile/"], main["token"]
        ),
        "s2_500": Load(
            "s2_500",
            "2. history, newest 50 (500-message session)",
            [history.format(s) for s in main["sessions"]],
            main["token"],
        ),
        "s2_200k": Load(
            "s2_200k",
            "2. history, newest 50 (200,000-message session)",
            [history.format(heavy["huge_session"])],
            heavy["token"],
        ),
        **(
            {
                "s2_tree": Load(
                    "s2_tree",
                    "2. history, newest 50 of the active path (200,000-message session, "
                    f"{tree['branches']:,} branch points)",
                    [history.format(tree["session"])],
                    tree["token"],
                )
            }
            if tree
            else {}
        ),
        "s3_small": Load(
            "s3_small",
            "3. session list, user with 500-message sessions",
            ["/api/chat-history/sessions/"],
            main["token"],
        ),
        "s3_heavy": Load(
            "s3_heavy",
            "3. session list, user with the 200,000-message session",
            ["/api/chat-history/sessions/"],
            heavy["token"],
        ),
        "s4": Load(
            "s4",
            "4. message create (400 bytes)",
            [create.format(s) for s in main["sessions"]],
            main["token"],
            method="POST",
            bodies=message,
        ),
        **(membership_loads(shared, history, create, message) if shared else {}),
        **(dashboard_loads(usage) if usage else {}),
        "s5": Load(
            "s5",
            "5. login (Argon2)",
            ["/api/users/login/"],
            method="POST",
            bodies=login_bodies,
            concurrency=LOGIN_CONCURRENCY,
            duration=8.0,
        ),
    }


def dashboard_loads(usage: dict) -> dict[str, Load]:
    """The dashboard (issue 13) with a day and with a year of usage: it reads
    maintained aggregates, so the two should cost the same."""
    return {
        "s10_day": Load(
            "s10_day",
            "10. dashboard, a day of usage",
            ["/api/users/dashboard/"],
            usage["day_token"],
        ),
        "s10_year": Load(
            "s10_year",
            f"10. dashboard, {usage['year_days']} days of usage",
            ["/api/users/dashboard/"],
            usage["year_token"],
        ),
    }


def membership_loads(
    shared: dict, history: str, create: str, message: list[str]
) -> dict[str, Load]:
    """The membership cost (issue 12): one user, an editor of the shared session
    (100 members), reads and posts to it and to a session of the same length
    that they own alone, with the same token."""
    solo, session, token = shared["solo_session"], shared["session"], shared["editor_token"]
    members = shared["members"]
    return {
        "s2_solo": Load(
            "s2_solo",
            "2. history, newest 50, owner-only session (500 messages), by its owner",
            [history.format(solo)],
            token,
        ),
        "s2_shared": Load(
            "s2_shared",
            f"2. history, newest 50, shared session (500 messages, {members} members), "
            "by an editor",
            [history.format(session)],
            token,
        ),
        "s4_solo": Load(
            "s4_solo",
            "4. message create, owner-only session, by its owner",
            [create.format(solo)],
            token,
            method="POST",
            bodies=message,
        ),
        "s4_shared": Load(
            "s4_shared",
            f"4. message create, shared session ({members} members), by an editor",
            [create.format(session)],
            token,
            method="POST",
            bodies=message,
        ),
    }


MEMBERSHIP_LOADS = ("s2_solo", "s2_shared", "s4_solo", "s4_shared")


# --- Ceilings and references measured outside the server -------------------------


def password_check_seconds(env: dict[str, str]) -> dict:
    """One Argon2 verify with the product's hasher, pinned to the server's core."""
    code = """
import json, statistics, time, django
django.setup()
from django.contrib.auth.hashers import check_password, get_hasher, make_password
encoded = make_password("bench password 9f3c")
check_password("bench password 9f3c", encoded)
times = []
for _ in range(9):
    started = time.perf_counter()
    assert check_password("bench password 9f3c", encoded)
    times.append(time.perf_counter() - started)
hasher = get_hasher()
print(json.dumps({"median": statistics.median(times), "min": min(times), "max": max(times),
    "hasher": hasher.algorithm, "params": {k: getattr(hasher, k, None)
    for k in ("time_cost", "memory_cost", "parallelism")}}))
"""
    out = subprocess.run(
        ["taskset", "-c", SERVER_CPU, sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def membership_queries(env: dict[str, str], seed: dict) -> dict:
    """Queries per request of the membership loads, counted in-process (bench/queries.py)."""
    shared = seed["shared"]
    out = run(
        [
            sys.executable,
            str(BENCH / "queries.py"),
            "--token",
            shared["editor_token"],
            "--solo",
            shared["solo_session"],
            "--shared",
            shared["session"],
            "--sql-dir",
            str(WORK),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


PGBENCH_SELECT = """\\set s random({lo}, {hi})
SELECT id, session_id, role, content, metadata, client_message_id, created_at, updated_at
  FROM chat_messages WHERE session_id = :s ORDER BY id DESC LIMIT 50;
"""
PGBENCH_INSERT = """\\set s random({lo}, {hi})
INSERT INTO bench_pg_insert (session_id, role, content, metadata, created_at, updated_at)
  VALUES (:s, 'user', '{content}', '{{}}', now(), now());
"""


def pgbench(seed: dict, kind: str, duration: float) -> dict:
    pks = seed["main"]["session_pks"]
    if kind == "select":
        script = PGBENCH_SELECT.format(lo=min(pks), hi=max(pks))
    else:
        script = PGBENCH_INSERT.format(lo=min(pks), hi=max(pks), content="x" * 400)
    path = WORK / f"pgbench-{kind}.sql"
    path.write_text(script)
    out = subprocess.run(
        [
            "taskset",
            "-c",
            CLIENT_CPU,
            "pgbench",
            "-h",
            PG_HOST,
            "-p",
            str(PG_PORT),
            "-U",
            PG_USER,
            "-n",
            "-M",
            "prepared",
            "-c",
            str(CONCURRENCY),
            "-j",
            "1",
            "-T",
            str(max(1, round(duration))),
            "-f",
            str(path),
            DB_NAME,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tps = float(re.search(r"tps = ([\d.]+) \(without initial", out).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    return {"rps": tps, "mean_ms": latency}


def prepare_pgbench_tables() -> None:
    with pg_connect(DB_NAME) as conn:
        # Same columns, defaults, checks and indexes as chat_messages.
        conn.execute("DROP TABLE IF EXISTS bench_pg_insert")
        conn.execute("CREATE TABLE bench_pg_insert (LIKE chat_messages INCLUDING ALL)")


# --- PostgreSQL connection accounting ---------------------------------------------


class Backends:
    """The PostgreSQL backends connected to the bench database (this one excluded)."""

    def __init__(self) -> None:
        self.conn = pg_connect(DB_NAME)
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pids(self) -> set[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [DB_NAME],
        ).fetchall()
        return {row[0] for row in rows}

    def sessions(self) -> int:
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        return self.conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", [DB_NAME]
        ).fetchone()[0]

    def watch(self) -> None:
        """Start recording every backend seen, every 50 ms, until ``stop_watching``."""
        self.seen = self.pids()
        self._stop.clear()

        def poll() -> None:
            while not self._stop.wait(0.05):
                self.seen |= self.pids()

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()

    def stop_watching(self) -> set[int]:
        self._stop.set()
        self._thread.join()
        return self.seen

    def close(self) -> None:
        self.conn.close()


# --- Statistics -----------------------------------------------------------------


def summary(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))

    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "n/a"

    import django
    import rest_framework

    with pg_connect("postgres") as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    import redis

    redis_version = redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "drf": rest_framework.VERSION,
        "postgresql": pg,
        "redis": redis_version,
        "gunicorn": metadata.version("gunicorn"),
        "uvicorn": metadata.version("uvicorn"),
        "psycopg": metadata.version("psycopg"),
        "channels_redis": metadata.version("channels-redis"),
        "wrk": version(["wrk", "-v"]),
        "pgbench": version(["pgbench", "--version"]),
    }


def free_port(port: int) -> None:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"port {port} is in use; stop whatever listens there")


# --- The run --------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--only", default="", help="comma-separated load keys")
    parser.add_argument("--servers", default="wsgi,asgi")
    parser.add_argument("--keep-db", action="store_true", help="reuse the seeded database")
    parser.add_argument("--skip", default="", help="comma-separated: pgbench,s6,s7,s9")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration = 1, 3.0
    skip = set(filter(None, args.skip.split(",")))
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict = {"started_at": datetime.now(UTC).isoformat(timespec="seconds")}

    ensure_tools()
    if not (args.keep_db and (WORK / "seed.json").exists()):
        (WORK / "secrets.json").unlink(missing_ok=True)
    env = base_env()
    results["machine"] = machine()
    seed_file = WORK / "seed.json"
    if args.keep_db and seed_file.exists():
        log(f"reusing database {DB_NAME}")
        seed = json.loads(seed_file.read_text())
    else:
        log(f"creating database {DB_NAME} and migrating")
        recreate_database()
        run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env)
        log("seeding")
        # No Redis: the events of the members it adds (bench/seed.py) reach no one.
        seed_env = {**env, "DB_POOL": "False", "REDIS_URL": ""}
        out = run(
            [sys.executable, str(BENCH / "seed.py")], cwd=ROOT, env=seed_env, capture_output=True
        ).stdout
        seed = json.loads(out.strip().splitlines()[-1])
        seed_file.write_text(json.dumps(seed))
        log(f"seeded {seed['messages']:,} messages in {seed['seconds']} s")
        prepare_pgbench_tables()
    run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env)
    results["seed"] = {k: seed[k] for k in ("seconds", "users", "sessions", "messages")}
    if "shared" in seed:
        results["seed"]["shared_members"] = seed["shared"]["members"]
    flush_redis()

    log("timing one password check")
    results["password_check"] = password_check_seconds(env)
    log(f"  {results['password_check']['median'] * 1000:.0f} ms")

    if "pgbench" not in skip:
        pg_runs: dict[str, list] = {"select": [], "insert": []}
        for round_ in range(args.runs):
            for kind in pg_runs:
                pg_runs[kind].append(pgbench(seed, kind, min(args.duration, 5.0)))
            log(
                f"pgbench round {round_ + 1}: "
                + ", ".join(f"{k} {v[-1]['rps']:.0f}/s" for k, v in pg_runs.items())
            )
        results["pgbench"] = {
            kind: {
                "rps": summary([r["rps"] for r in runs]),
                "mean_ms": summary([r["mean_ms"] for r in runs]),
            }
            for kind, runs in pg_runs.items()
        }

    all_loads = loads(seed)
    selected = [k for k in all_loads if not args.only or k in args.only.split(",")]
    if any(key in selected for key in MEMBERSHIP_LOADS):
        log("counting the queries of the membership loads (in-process)")
        results["queries"] = membership_queries(env, seed)
        log("  " + ", ".join(f"{k}={v['queries']}" for k, v in results["queries"].items()))
    kinds = args.servers.split(",")
    servers = {kind: Server(kind, kind, PORTS[kind], env) for kind in kinds}
    for server in servers.values():
        free_port(server.port)
    results["server_config"] = {
        "processes": PROCESSES,
        "threads_per_wsgi_process": THREADS,
        "db_pool_max": POOL_MAX,
        "concurrency": CONCURRENCY,
        "login_concurrency": LOGIN_CONCURRENCY,
        "duration_s": args.duration,
        "runs": args.runs,
    }
    http: dict = {kind: {key: [] for key in selected} for kind in kinds}
    try:
        for server in servers.values() if selected else []:
            log(f"starting {server.name}")
            server.start()
            for key in selected:  # warm-up: imports, pool, caches
                wrk(server, all_loads[key], duration=2)
        for round_ in range(args.runs if selected else 0):
            for key in selected:
                for kind, server in servers.items():
                    load = all_loads[key]
                    duration = load.duration if key == "s5" else args.duration
                    since = server.log.stat().st_size
                    http[kind][key].append(wrk(server, load, duration=duration))
                    failed = server.publish_failures(since)
                    http[kind][key][-1]["publish_failures"] = failed
                    if failed:
                        log(f"  !! {kind} {key}: {failed} publishes failed; see the server log")
            log(
                f"round {round_ + 1}: "
                + "; ".join(
                    f"{kind} " + " ".join(f"{k}={http[kind][k][-1]['rps']:.0f}" for k in selected)
                    for kind in kinds
                )
            )

        # Scenario 2, p99 at half the maximum rate of the 500-message history.
        if "s2_500" in selected:
            half: dict = {kind: [] for kind in kinds}
            for _ in range(args.runs):
                for kind, server in servers.items():
                    top = statistics.median(r["rps"] for r in http[kind]["s2_500"])
                    load = all_loads["s2_500"]
                    p50_ms = statistics.median(r["p50_us"] for r in http[kind]["s2_500"]) / 1000
                    # Each connection waits so that all together offer top/2 per second.
                    delay = max(load.concurrency * 1000 / (top / 2) - p50_ms / 4, 1)
                    since = server.log.stat().st_size
                    res = wrk(server, load, duration=args.duration, delay_ms=delay)
                    res["target_rps"] = top / 2
                    inside = sorted(server.request_times_ms(since, "/messages/"))
                    res["server_p99_ms"] = inside[int(0.99 * (len(inside) - 1))] if inside else None
                    half[kind].append(res)
            results["s2_half_rate"] = {
                kind: {
                    "target_rps": runs[0]["target_rps"],
                    "rps": summary([r["rps"] for r in runs]),
                    "p99_ms": summary([r["p99_us"] / 1000 for r in runs]),
                    "p50_ms": summary([r["p50_us"] / 1000 for r in runs]),
                    "server_p99_ms": summary([r["server_p99_ms"] or 0 for r in runs]),
                }
                for kind, runs in half.items()
            }

        # Scenario 6: the pool against a new connection per request.
        if "s6" not in skip and "s1" in selected:
            results["s6"] = scenario_6(servers, kinds[0], env, all_loads["s1"], args)
    finally:
        for server in servers.values():
            server.stop()

    results["http"] = {
        kind: {
            key: {
                "label": all_loads[key].label,
                "rps": summary([r["rps"] for r in runs]),
                "p50_ms": summary([r["p50_us"] / 1000 for r in runs]),
                "p99_ms": summary([r["p99_us"] / 1000 for r in runs]),
                "errors": sum(r["errors"] + r["timeouts"] for r in runs),
                "publish_failures": sum(r.get("publish_failures", 0) for r in runs),
                "requests": sum(r["requests"] for r in runs),
            }
            for key, runs in per_kind.items()
        }
        for kind, per_kind in http.items()
    }

    if "s7" not in skip:
        try:
            results["s7"] = scenario_7(env, seed, args)
        except (Exception, SystemExit) as exc:  # the HTTP figures are still worth a report
            log(f"  !! scenario 7 failed: {exc}")
            results["s7"] = {"error": [str(exc)]}

    if "s9" not in skip:
        try:
            results["s9"] = scenario_9(env, seed)
        except (Exception, SystemExit) as exc:
            log(f"  !! scenario 9 failed: {exc}")
            results["s9"] = {"error": [str(exc)]}

    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["elapsed_s"] = round(time.monotonic() - STARTED, 1)
    from report import write_report  # bench/report.py

    # Only a full run replaces the published report; a partial one (some loads,
    # one server, fewer rounds, skipped parts) is written beside the work files.
    partial = args.quick or args.only or skip or kinds != ["wsgi", "asgi"] or args.runs != 3
    out = WORK if partial else BENCH
    write_report(results, BENCH, out=out)
    where = out.relative_to(ROOT)
    log(f"wrote {where}/RESULTS.md and {where}/results.json ({results['elapsed_s']:.0f} s)")


def scenario_6(servers: dict, kind: str, env: dict, load: Load, args) -> dict:
    """Pool vs reconnect-per-request on the same server kind, interleaved."""
    pooled = servers[kind]
    unpooled = Server(
        f"{kind}-nopool",
        kind,
        PORTS[f"{kind}-nopool"],
        {**env, "DB_POOL": "False", "DB_CONN_MAX_AGE": "0"},
    )
    free_port(unpooled.port)
    backends = Backends()
    runs: dict[str, list] = {"pool": [], "reconnect": []}
    steady: list[dict] = []
    try:
        unpooled.start()
        wrk(unpooled, load, duration=2)
        for _ in range(args.runs):
            time.sleep(1.0)  # the reconnecting server finishes what it had queued
            before = backends.pids()
            backends.watch()
            runs["pool"].append(wrk(pooled, load, duration=args.duration))
            seen = backends.stop_watching()
            after = backends.pids()
            before_sessions = backends.sessions()
            runs["reconnect"].append(wrk(unpooled, load, duration=args.duration))
            time.sleep(0.5)  # exited backends report their session on the way out
            steady.append(
                {
                    "backends_before": len(before),
                    "backends_after": len(after),
                    "backends_seen": len(seen),
                    "new_backends": len(seen - before),
                    "reconnect_sessions": backends.sessions() - before_sessions,
                    "reconnect_requests": runs["reconnect"][-1]["requests"],
                }
            )
    finally:
        unpooled.stop()
        backends.close()
    return {
        "server": kind,
        "load": load.key,
        "pool_rps": summary([r["rps"] for r in runs["pool"]]),
        "reconnect_rps": summary([r["rps"] for r in runs["reconnect"]]),
        "pool_p99_ms": summary([r["p99_us"] / 1000 for r in runs["pool"]]),
        "reconnect_p99_ms": summary([r["p99_us"] / 1000 for r in runs["reconnect"]]),
        "errors": sum(r["errors"] for r in runs["pool"] + runs["reconnect"]),
        "steady_state": steady,
    }


def scenario_7(env: dict, seed: dict, args) -> dict:
    """WebSocket fan-out through the Redis channel layer (see bench/ws_fanout.py)."""
    log("scenario 7: bare channel layer")
    bare = subprocess.run(
        ["taskset", "-c", SERVER_CPU, sys.executable, str(BENCH / "layer_bare.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if bare.returncode:
        log("  !! the bare channel-layer run failed; see bench/.work/layer_bare.log")
        (WORK / "layer_bare.log").write_text(bare.stdout + bare.stderr)
        return {"error": bare.stderr.strip().splitlines()[-1:]}
    result = {"bare": json.loads(bare.stdout.strip().splitlines()[-1])}
    server = Server("asgi-ws", "asgi", PORTS["asgi"], env)
    free_port(server.port)
    try:
        server.start()
        log("scenario 7: sockets")
        fanout = subprocess.run(
            [
                "taskset",
                "-c",
                CLIENT_CPU,
                sys.executable,
                str(BENCH / "ws_fanout.py"),
                "--base",
                server.base,
                "--token",
                seed["main"]["token"],
                "--session",
                seed["main"]["sessions"][0],
                "--server-pids",
                ",".join(map(str, server.pids())),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=240,
        )
        (WORK / "ws_fanout.log").write_text(fanout.stdout + fanout.stderr)
        if fanout.returncode:
            result["error"] = (fanout.stderr or fanout.stdout).strip().splitlines()[-1:]
        else:
            result.update(json.loads(fanout.stdout.strip().splitlines()[-1]))
    finally:
        server.stop()
    return result


def scenario_9(env: dict, seed: dict) -> dict:
    """A shared session's members, one socket each on two uvicorn processes, and
    messages posted through gunicorn (see bench/ws_shared.py, which reads the
    members' tokens from bench/.work/seed.json)."""
    if "shared" not in seed:
        return {"error": ["the database was seeded before issue 12: run without --keep-db"]}
    rest = Server("wsgi-s9", "wsgi", PORTS["wsgi"], env)
    sockets = [
        Server("asgi-s9a", "asgi", PORTS["asgi"], env),
        Server("asgi-s9b", "asgi", PORTS["asgi-2"], env),
    ]
    servers = [rest, *sockets]
    for server in servers:
        free_port(server.port)
    try:
        for server in servers:
            server.start()
        log(f"scenario 9: {seed['shared']['members']} members' sockets on two uvicorn processes")
        client = subprocess.run(
            [
                "taskset",
                "-c",
                CLIENT_CPU,
                sys.executable,
                str(BENCH / "ws_shared.py"),
                "--seed",
                str(WORK / "seed.json"),
                "--rest",
                rest.base,
                "--ws",
                ",".join(server.base for server in sockets),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        (WORK / "ws_shared.log").write_text(client.stdout + client.stderr)
        if client.returncode:
            return {"error": (client.stderr or client.stdout).strip().splitlines()[-1:]}
        result = json.loads(client.stdout.strip().splitlines()[-1])
        result["ws_processes"] = len(sockets) * PROCESSES
        every = result["all_ms"]  # None if no message reached every socket
        log(
            f"  delivered to all {result['sockets']}: "
            + (f"p50 {every['p50']:.1f} ms, p99 {every['p99']:.1f} ms; " if every else "never; ")
            + f"lost {result['lost']} of {result['sockets'] * result['messages']:,}"
        )
        burst = result["burst"]
        log(
            f"  reconnecting {burst['connect_batch']} at a time: {burst['refused']} refused, "
            f"{sum(burst['closed'].values())} closed by the server, {burst['lost']} lost"
        )
        return result
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    main()
