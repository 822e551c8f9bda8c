"""Download an OSM extract (e.g. Geofabrik's henan-latest.osm.pbf): resumable, checksum-verified
against the ``.md5`` file Geofabrik publishes beside it, and moved into place only when verified."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import requests

from walkcover._errors import OutputFolderError, SourceError

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)

#: What the last part of a download's URL must be to name its file in the downloads folder: an
#: extract's name (``henan-latest.osm.pbf``), nothing hidden, no folder, no query.
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.pbf")


def file_name(url: str) -> str:
    """The name a download of `url` is saved under: its path's last part.

    Raises
    ------
    SourceError
        The URL does not end in a file name walkcover can use (``..``, a query, nothing).
    """
    parts = urlsplit(url)
    name = unquote(parts.path.rsplit("/", 1)[-1])
    if parts.scheme not in ("http", "https") or not FILE_NAME.fullmatch(name) or parts.query:
        shown = repr(url) if len(url) <= 120 else repr(url[:117] + "…")
        raise SourceError(
            f"--url {shown} does not end in the extract's file name (….osm.pbf); give the "
            "file's own http(s) "
            "address, e.g. https://download.geofabrik.de/asia/china/henan-latest.osm.pbf"
        )
    return name


def published_md5(url: str, *, timeout_s: float = 30.0) -> str:
    """The MD5 published at ``url + '.md5'`` (``<hash>  <file name>``)."""
    try:
        r = requests.get(url + ".md5", timeout=timeout_s)
        r.raise_for_status()
    except requests.RequestException as exc:
        raise SourceError(
            f"could not read the checksum {url}.md5 ({exc}); the download is not used unverified"
        ) from exc
    m = re.match(r"\s*([0-9a-fA-F]{32})\b", r.text)
    if not m:
        raise SourceError(f"{url}.md5 does not hold an MD5 checksum: {r.text[:80]!r}")
    return m.group(1).lower()


def file_md5(path: Path, *, chunk_bytes: int = 1 << 20) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while block := fh.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def download(
    url: str, dest_dir: Path, *, progress: Progress | None = None, timeout_s: float = 60.0
) -> Path:
    """Download `url` into `dest_dir`, resuming an interrupted download, and verify it.

    The bytes go to ``<name>.part``; an interrupted transfer keeps it, and the next call asks the
    server for the rest (HTTP Range). Only a file whose MD5 matches the published one is renamed to
    its final name; a mismatch deletes the partial file.

    Raises
    ------
    SourceError
        On a network error (the partial file is kept for resuming) or a checksum mismatch.
    """
    dest_dir = Path(dest_dir)
    name = file_name(url)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final, part = dest_dir / name, dest_dir / (name + ".part")
    for path in (final, part):  # a link in the cache is none of ours: never written through
        if path.is_symlink() or (path.exists() and not path.is_file()):
            _remove(path)
    expected = published_md5(url)
    if final.exists() and file_md5(final) == expected:
        return final  # already here and current
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with requests.get(url, stream=True, headers=headers, timeout=timeout_s) as r:
            if r.status_code == 416:  # the part is already complete
                pass
            else:
                r.raise_for_status()
                if have and r.status_code != 206:  # the server ignored the range: start again
                    have = 0
                total = r.headers.get("Content-Length")
                total_n = int(total) + have if total is not None else None
                done = have
                try:
                    with _open_part(part, append=bool(have)) as fh:
                        for chunk in r.iter_content(chunk_size=1 << 16):
                            fh.write(chunk)
                            done += len(chunk)
                            if progress:
                                progress(done, total_n)
                except OSError as exc:  # a full disk, a quota: the bytes written are kept
                    size = part.stat().st_size if part.exists() else 0
                    raise OutputFolderError(
                        f"the downloads folder {str(dest_dir)!r} cannot be written "
                        f"({exc.strerror or exc}); the {size:,} bytes downloaded are kept in "
                        f"{part.name}: free space there and run the same command again to resume, "
                        "or choose another cache folder with --cache-dir DIR"
                    ) from None
                if total_n is not None and done < total_n:
                    raise SourceError(f"download of {url} stopped at {done:,} of {total_n:,} bytes")
    except (requests.RequestException, SourceError) as exc:
        size = part.stat().st_size if part.exists() else 0
        raise SourceError(
            f"download of {url} was interrupted after {size:,} bytes ({exc}); run the same command again to resume"
        ) from exc
    got = file_md5(part)
    if got != expected:
        part.unlink()
        raise SourceError(
            f"{name}: checksum mismatch (got {got}, {url}.md5 says {expected}); the download was deleted, "
            "nothing was put in place: run the command again"
        )
    part.replace(final)
    return final


def _open_part(part: Path, *, append: bool) -> BinaryIO:
    """The partial download opened for writing, never through a link (``O_NOFOLLOW``)."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_APPEND if append else os.O_TRUNC
    return os.fdopen(os.open(part, flags, 0o666), "ab" if append else "wb")


def _remove(path: Path) -> None:
    """Remove what stands at a download's name in the cache and is not a file of ours (a link,
    a folder): the download is made afresh."""
    import shutil

    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)
