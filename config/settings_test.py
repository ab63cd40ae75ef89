"""Settings for the test suite: production settings with throwaway secrets.

The secrets are generated per run (never committed); everything else, the
database included, comes from the environment exactly as in production, so
``DATABASE_URL``/``REDIS_URL`` switch the suite to PostgreSQL/Redis.
"""

import os
import secrets

from cryptography.fernet import Fernet

os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(64))
os.environ.setdefault("ENCRYPTION_KEY", Fernet.generate_key().decode())
os.environ.setdefault("DJANGO_DEBUG", "False")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "False")

from config.settings import *  # noqa: F403

# Static files are served from the apps' folders; no collectstatic in tests.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
