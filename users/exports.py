"""The account archive (data portability): everything a user owns, as one zip.

``account_archive(user)`` is a generator of chunks: the zip is written by the
standard library's ``zipfile`` into a sink that the generator empties after
every piece it writes, so memory holds one piece of one member (at most
``CHUNK_SIZE`` bytes before compression, plus the compressor's window), never
the archive. ``zipfile`` sees an unseekable stream and writes each member's
sizes in a data descriptor after its data, as streamed zips do.

Members, in order: ``profile.json`` (this app), then what each feature app
registered with ``users.hooks.on_user_export`` (``chats/...`` from
``chat_history``, ``documents/...`` from ``documents``). The profile lists the
provider keys by their hints only, never a key or its ciphertext.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any, BinaryIO, cast

from django.utils import timezone

from core.streaming import streaming_content as streaming_content  # for the view
from users import selectors
from users.hooks import ArchiveContent, user_export_contributors
from users.models import ProviderKey, User

ARCHIVE_FORMAT_VERSION = 1
CHUNK_SIZE = 64 * 1024


class _Sink:
    """A write-only, unseekable file that keeps what was written until drained."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._pieces.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data, self._pieces = b"".join(self._pieces), []
        return data


def account_archive(user: User) -> Iterator[bytes]:
    """The zip of ``user``'s data, chunk by chunk (nothing is read before the
    first chunk is asked for). Each contribution's files are opened, and its
    rows read, only when their turn comes."""
    sink = _Sink()
    written_at = timezone.now()
    with zipfile.ZipFile(cast("IO[bytes]", sink), "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in _members(user, written_at=written_at):
            yield from _write_member(archive, sink, path, content, written_at=written_at)
    yield sink.drain()  # the central directory


def _members(user: User, *, written_at) -> Iterator[tuple[str, ArchiveContent]]:
    yield "profile.json", iter([_json_bytes(profile_archive_data(user, exported_at=written_at))])
    for contributor in user_export_contributors():
        yield from contributor(user)


def _write_member(
    archive: zipfile.ZipFile, sink: _Sink, path: str, content: ArchiveContent, *, written_at
) -> Iterator[bytes]:
    info = zipfile.ZipInfo(path, date_time=written_at.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    # The size is unknown until the end: zip64 sizes, so no member is too large.
    with archive.open(info, mode="w", force_zip64=True) as member:
        for piece in _pieces(content):
            member.write(piece)
            if chunk := sink.drain():
                yield chunk
    if chunk := sink.drain():
        yield chunk


def _pieces(content: ArchiveContent) -> Iterator[bytes]:
    # Not isinstance(): a storage's File is no io.IOBase, and a binary file is
    # an Iterator too (of lines).
    if not hasattr(content, "read"):
        yield from content
        return
    file = cast("BinaryIO", content)
    try:
        while piece := file.read(CHUNK_SIZE):
            yield piece
    finally:
        file.close()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str).encode()


def profile_archive_data(user: User, *, exported_at) -> dict[str, Any]:
    """What ``profile.json`` holds: the account, its settings and its provider
    keys, each by its hint (their secret column is not even read); nothing
    about service tokens. ``has_api_key``/``api_key_hint`` describe the default
    OpenAI key, as seed 000's profile does."""
    user = selectors.user_get_with_profile(user_id=user.pk)
    profile = user.profile
    hint = selectors.user_default_openai_key_hint(user=user)
    return {
        "format": "account-archive",
        "version": ARCHIVE_FORMAT_VERSION,
        "exported_at": exported_at.isoformat(),
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "date_joined": user.date_joined.isoformat(),
        "last_login": user.last_login.isoformat() if user.last_login else None,
        "preferred_language": profile.preferred_language,
        "monthly_token_limit": profile.monthly_token_limit,
        "monthly_cost_limit": profile.monthly_cost_limit,
        "has_api_key": hint is not None,
        "api_key_hint": hint,
        "provider_keys": [_key_data(key) for key in selectors.provider_key_list(user=user)],
    }


def _key_data(key: ProviderKey) -> dict[str, Any]:
    return {
        "id": key.pk,
        "provider": key.provider,
        "label": key.label,
        "base_url": key.base_url,
        "hint": key.hint,
        "is_default": key.is_default,
        "status": key.effective_status,
        "expires_at": _iso(key.expires_at),
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "last_verified_at": _iso(key.last_verified_at),
        "last_verification": key.last_verification,
        "monthly_token_limit": key.monthly_token_limit,
        "monthly_cost_limit": key.monthly_cost_limit,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
