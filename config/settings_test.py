"""Settings for the test suite: production settings with throwaway secrets.

The secrets are generated per run (never committed); everything else, the
database included, comes from the real environment exactly as in production,
so ``DATABASE_URL``/``REDIS_URL`` switch the suite to PostgreSQL/Redis. A
developer's ``.env`` is not read: ``make test`` never reaches the development
database or Redis by accident. Every Redis key of a run carries a prefix of
its own (``REDIS_KEY_PREFIX``; the servers an end-to-end test starts inherit
it), and the suite deletes only keys under it.
"""

import os
import secrets
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

os.environ["DJANGO_READ_DOTENV"] = "False"
os.environ.setdefault("REDIS_KEY_PREFIX", f"test-{os.getpid()}-{secrets.token_hex(4)}")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(64))
# Tests write fast; the tests of the write limits set their own rates.
os.environ.setdefault("THROTTLE_MESSAGES", "100000/min")
os.environ.setdefault("THROTTLE_UPLOADS", "100000/min")
os.environ.setdefault("THROTTLE_SERVICE_MESSAGES", "100000/min")
os.environ.setdefault("THROTTLE_SERVICE_STREAM", "100000/min")
# Every event at once; the coalescing tests set their own window.
os.environ.setdefault("REALTIME_COALESCE_MS", "0")
# Every write emits its outbox event, with or without a broker (BROKER_URL), so
# the whole suite runs the emits inside their transactions (outbox.services).
os.environ.setdefault("OUTBOX_ENABLED", "True")
os.environ.setdefault("ENCRYPTION_KEY", Fernet.generate_key().decode())
os.environ.setdefault("DJANGO_DEBUG", "False")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "False")

from config.settings import *  # noqa: F403

# Static files are served from the apps' folders; no collectstatic in tests.
STATIC_ROOT = None  # type: ignore[assignment]  # settings.STATIC_ROOT is a Path
WHITENOISE_USE_FINDERS = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory, so that a server started by an end-to-end test can
    # open the same test database; one per process so parallel runs never meet.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.gettempdir()) / f"chatbot-test-{os.getpid()}.sqlite3"),
    }
