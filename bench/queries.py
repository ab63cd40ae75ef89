"""The queries of the membership cost (issue 12), counted in-process.

The same requests as the membership loads of bench/run.py (``s2_solo``,
``s2_shared``, ``s4_solo``, ``s4_shared``): one editor of the shared session,
with their real token, asks for the newest 50 messages of, and posts a 400-byte
message to, the session they own alone and the shared one. Django's test
client sends each request REPEATS times after a warm-up, and
``CaptureQueriesContext`` counts the SQL queries of each. Whether a session is
shared must not change the number.

Prints one JSON object, per load ``{"queries": n, "runs": [...]}`` (``n`` the
most any run took); with ``--sql-dir``, each load's SQL is written there too
(``queries-<load>.sql``).

Usage: python bench/queries.py --token T --solo SESSION --shared SESSION
(the environment names the database, as for the servers)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

REPEATS = 3
CONTENT = ("A member's question about the shared contract, with the clause numbers. " * 6)[:400]


def _request(client, method: str, path: str):
    if method == "GET":
        return client.get(path, {"limit": 50})
    return client.post(path, {"role": "user", "content": CONTENT}, format="json")


def membership_queries(*, client, solo: str, shared: str) -> dict[str, dict]:
    """Per load, the queries of each of REPEATS requests (after a warm-up) and
    the most of them. ``client``: an APIClient carrying the editor's credentials."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    path = "/api/chat-history/sessions/{}/messages/"
    requests = {
        "s2_solo": ("GET", path.format(solo)),
        "s2_shared": ("GET", path.format(shared)),
        "s4_solo": ("POST", path.format(solo)),
        "s4_shared": ("POST", path.format(shared)),
    }
    counted: dict[str, dict] = {}
    for key, (method, url) in requests.items():
        _request(client, method, url)  # warm-up: the first request of a process loads more
        runs, sql = [], []
        for _ in range(REPEATS):
            with CaptureQueriesContext(connection) as queries:
                response = _request(client, method, url)
            if response.status_code not in (200, 201):
                raise SystemExit(
                    f"{method} {url}: {response.status_code} {response.content[:200]!r}"
                )
            runs.append(len(queries))
            sql = [query["sql"] for query in queries.captured_queries]
        counted[key] = {"queries": max(runs), "runs": runs, "sql": sql}
    return counted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True, help="the editor's access token")
    parser.add_argument("--solo", required=True, help="the session the editor owns alone")
    parser.add_argument("--shared", required=True, help="the shared session")
    parser.add_argument("--sql-dir", type=Path)
    args = parser.parse_args()

    import django

    django.setup()
    from rest_framework.test import APIClient

    # A host the settings allow (the test client's default, "testserver", is not).
    client = APIClient(SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Bearer {args.token}")
    counted = membership_queries(client=client, solo=args.solo, shared=args.shared)
    for key, found in counted.items():
        sql = found.pop("sql")
        if args.sql_dir:
            (args.sql_dir / f"queries-{key}.sql").write_text(";\n\n".join(sql) + ";\n")
    print(json.dumps(counted))


if __name__ == "__main__":
    main()
