"""Download an OSM extract (e.g. Geofabrik's henan-latest.osm.pbf): resumable, checksum-verified
against the ``.md5`` file Geofabrik publishes beside it, and moved into place only when verified."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import requests

from walkcover._errors import SourceError

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


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
    dest_dir.mkdir(parents=True, exist_ok=True)
    name = url.rstrip("/").rsplit("/", 1)[-1]
    final, part = dest_dir / name, dest_dir / (name + ".part")
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
                with part.open("ab" if have else "wb") as fh:
                    done = have
                    for chunk in r.iter_content(chunk_size=1 << 16):
                        fh.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total_n)
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
