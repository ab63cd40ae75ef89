"""Create ``.env`` from ``.env.example`` with freshly generated local secrets.

Used by ``make run`` on a machine that has no ``.env`` yet, so a fresh clone
starts without anyone inventing a key; the file is git-ignored and readable
only by its owner. An existing ``.env`` is never touched.

    python -m config.envfile [.env.example] [.env]
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

GENERATORS = {
    "DJANGO_SECRET_KEY": lambda: secrets.token_urlsafe(64),
    "ENCRYPTION_KEY": lambda: Fernet.generate_key().decode(),
}


def render(example: str) -> str:
    lines = []
    for line in example.splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#") and name in GENERATORS and not value:
            line = f"{name}={GENERATORS[name]()}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(example_path: str = ".env.example", env_path: str = ".env") -> int:
    target = Path(env_path)
    if target.exists():
        return 0
    content = render(Path(example_path).read_text())
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    sys.stderr.write(f"Created {target} with generated secrets (kept out of git).\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
