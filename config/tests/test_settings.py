"""Start-up configuration: production refuses missing or weak secrets."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config import env, envfile

PROJECT = Path(__file__).resolve().parents[2]


def _production_env(**overrides: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "ENCRYPTION_", "DATABASE_", "POSTGRES_", "REDIS_"))
    }
    base |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "api.example.com",
        # An empty value counts as unset and is not replaced by a local .env.
        "DATABASE_URL": "",
        "POSTGRES_DB": "",
        "REDIS_URL": "",
    }
    return base | overrides


def _start(env_vars: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = args or ("-c", "import django; django.setup()")
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, *command],
        cwd=PROJECT,
        env=env_vars,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_SECRET_KEY", ""),
        ("DJANGO_SECRET_KEY", "django-insecure-" + "x" * 60),
        ("DJANGO_SECRET_KEY", "short"),
        ("ENCRYPTION_KEY", ""),
        ("ENCRYPTION_KEY", "not-a-fernet-key"),
    ],
)
def test_production_start_up_fails_with_one_line_naming_the_variable(variable, value):
    result = _start(_production_env(**{variable: value}))

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_production_settings_pass_check_deploy():
    result = _start(_production_env(), "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_the_benchmark_route():
    result = _start(
        _production_env(BENCH_ENDPOINTS="True"),
        *("manage.py", "check", "--deploy", "--fail-level", "WARNING"),
    )
    assert result.returncode == 1
    assert "core.W001" in result.stdout + result.stderr


def test_env_helpers_parse_and_reject(monkeypatch):
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "12")
    monkeypatch.setenv("X_LIST", " a, b ,,c ")
    monkeypatch.setenv("X_EMPTY", "")
    assert env.get_bool("X_BOOL", default=False) is True
    assert env.get_int("X_INT", 1) == 12
    assert env.get_list("X_LIST") == ["a", "b", "c"]
    assert env.get_str("X_EMPTY", "fallback") == "fallback"
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(SystemExit, match="X_BOOL must be true or false"):
        env.get_bool("X_BOOL", default=False)
    monkeypatch.setenv("X_INT", "-3")
    with pytest.raises(SystemExit, match="X_INT must be at least 0"):
        env.get_int("X_INT", 1)


def test_fernet_keys_accept_a_rotation_list(monkeypatch):
    keys = [Fernet.generate_key().decode() for _ in range(2)]
    monkeypatch.setenv("ENCRYPTION_KEY", ",".join(keys))
    assert env.get_fernet_keys() == keys
    monkeypatch.setenv("ENCRYPTION_KEY", f"{keys[0]},broken")
    with pytest.raises(SystemExit, match="key #2"):
        env.get_fernet_keys()


def test_envfile_fills_only_the_generated_secrets(tmp_path):
    example = tmp_path / ".env.example"
    example.write_text("# c\nDJANGO_SECRET_KEY=\nENCRYPTION_KEY=\nDJANGO_DEBUG=True\n")
    target = tmp_path / ".env"

    envfile.main(str(example), str(target))

    values = dict(line.split("=", 1) for line in target.read_text().splitlines() if "=" in line)
    assert len(values["DJANGO_SECRET_KEY"]) >= 50
    Fernet(values["ENCRYPTION_KEY"])
    assert values["DJANGO_DEBUG"] == "True"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    before = target.read_text()
    envfile.main(str(example), str(target))  # never overwrites
    assert target.read_text() == before


def test_the_test_settings_never_read_a_developers_env_file():
    probe = (
        "import dotenv; calls = []; "
        "dotenv.load_dotenv = lambda *a, **k: calls.append(a); "
        "import config.settings_test; print(len(calls))"
    )
    env_vars = {k: v for k, v in os.environ.items() if k != "DJANGO_READ_DOTENV"}
    result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", probe], cwd=PROJECT, env=env_vars, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


@pytest.mark.redis
def test_the_suite_deletes_only_its_own_redis_keys(settings):
    import redis

    from conftest import _delete_own_redis_keys

    client = redis.Redis.from_url(settings.REDIS_URL)
    foreign, own = f"not-ours-{secrets.token_hex(8)}", f"{settings.REDIS_KEY_PREFIX}:probe"
    client.set(foreign, "keep", ex=60)
    client.set(own, "ours", ex=60)
    try:
        _delete_own_redis_keys()  # what the suite runs around every test

        assert client.get(foreign) == b"keep"
        assert client.get(own) is None
    finally:
        client.delete(foreign)
        client.close()
