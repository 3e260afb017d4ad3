"""Resumable, verified, bounded-parallel file downloads.

A file is written to ``<name>.part``; an interrupted download continues from the part's length
with an HTTP Range request (a server that ignores Range sends the whole file again and the part
restarts). When the bytes are all there the md5 is checked: a match is fsynced and renamed into
place atomically, so a file under its final name is always complete and verified; a mismatch
is moved to the quarantine folder (kept for inspection, never used) and reported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError, MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util import Retry

from histobench.benchmark.progress import stderr_console
from histobench.datasets.fetch.http import HttpClient, describe, format_bytes
from histobench.plugins.errors import DataError, HistobenchError

CHUNK = 1 << 20  # read1 returns what has arrived, up to this
PART_SUFFIX = ".part"
Status = Literal["downloaded", "present", "quarantined", "failed"]


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: where from, where to, and what it must be."""

    url: str
    path: Path  # final location
    size: int | None
    md5: str | None

    @property
    def part(self) -> Path:
        return self.path.with_name(self.path.name + PART_SUFFIX)


@dataclass(frozen=True)
class Outcome:
    file: RemoteFile
    status: Status
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("downloaded", "present")


def make_download_progress() -> Progress:
    """Bytes, rate and ETA on stderr; silent under HISTOBENCH_QUIET."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr_console,
        disable=bool(os.environ.get("HISTOBENCH_QUIET")),
        transient=False,
    )


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_present(file: RemoteFile) -> bool:
    """Final name + expected size = verified: only a verified file is ever renamed there."""
    return file.path.is_file() and (file.size is None or file.path.stat().st_size == file.size)


def bytes_to_fetch(files: Iterable[RemoteFile]) -> int:
    """What is still missing: sizes minus finished files and the length of partial ones."""
    total = 0
    for file in files:
        if is_present(file) or file.size is None:
            continue
        done = file.part.stat().st_size if file.part.is_file() else 0
        total += max(0, file.size - done)
    return total


def free_bytes(path: Path) -> int:
    """Free space on the disk that holds ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def ensure_free_space(path: Path, needed: int, what: str) -> None:
    """Refuse to start when the disk under ``path`` cannot hold ``needed`` more bytes."""
    free = free_bytes(path)
    if needed > free:
        raise DataError(
            f"{path}: not enough free disk for {what}: need {format_bytes(needed)}, "
            f"{format_bytes(free)} free"
        )


def quarantine(file: Path, folder: Path, reason: str) -> Path:
    """Move a bad download aside (suffix ``.quarantined``: no reader picks it up)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{file.name.removesuffix(PART_SUFFIX)}.{time.strftime('%Y%m%d-%H%M%S')}"
    target = target.with_name(target.name + ".quarantined")
    os.replace(file, target)
    (target.with_name(target.name + ".txt")).write_text(reason + "\n", encoding="utf-8")
    return target


class Downloader:
    """Downloads files through one client, ``settings.parallel`` at a time."""

    def __init__(self, client: HttpClient, quarantine_dir: Path, progress: Progress) -> None:
        self.client = client
        self.quarantine_dir = quarantine_dir
        self.progress = progress

    def fetch_all(self, files: Sequence[RemoteFile], label: str) -> list[Outcome]:
        """Every file, each to an outcome; one file's failure does not stop the others."""
        total = sum(f.size or 0 for f in files)
        overall = self.progress.add_task(label, total=total or None)
        workers = max(1, min(self.client.settings.parallel, len(files)))
        with self.progress, ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(lambda f: self._fetch_guarded(f, overall), files))
        return outcomes

    def _fetch_guarded(self, file: RemoteFile, overall: TaskID) -> Outcome:
        try:
            return self.fetch(file, overall)
        except (HistobenchError, HTTPError, OSError) as exc:
            detail = str(exc) if isinstance(exc, HistobenchError) else describe(exc)
            return Outcome(file, "failed", detail)

    def fetch(self, file: RemoteFile, overall: TaskID | None = None) -> Outcome:
        if is_present(file):
            if overall is not None:
                self.progress.update(overall, advance=file.size or 0)
            return Outcome(file, "present")
        file.path.parent.mkdir(parents=True, exist_ok=True)
        task = self.progress.add_task(file.path.name, total=file.size)
        try:
            digest, length = self._stream(file, task, overall)
        finally:
            self.progress.update(task, visible=False)
        problem = _mismatch(file, digest, length)
        if problem:
            moved = quarantine(file.part, self.quarantine_dir, f"{file.url}: {problem}")
            return Outcome(file, "quarantined", f"{problem}; kept aside at {moved}")
        with file.part.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(file.part, file.path)
        return Outcome(file, "downloaded")

    def _stream(self, file: RemoteFile, task: TaskID, overall: TaskID | None) -> tuple[str, int]:
        """Bytes into the part file until the server has sent them all; (md5, length)."""
        digest, offset = _resume_state(file)
        self.progress.update(task, completed=offset)
        if overall is not None:
            self.progress.update(overall, advance=offset)
        retries: Retry = self.client.settings.retry()
        while file.size is None or offset < file.size:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            response = self.client.request(
                "GET", file.url, headers=headers, retries=retries, stream=True
            )
            retries = response.retries or retries  # the budget spans the resumes too
            if offset and response.status == 200:
                # Range ignored: the whole file is coming, so the part starts again with it.
                self._restart(file, task, overall, offset)
                digest, offset = hashlib.md5(), 0
            elif offset and not _continues_at(response, offset):
                # A 416 or a range that does not start where the part ends: ask for it all.
                response.drain_conn()
                self._restart(file, task, overall, offset)
                digest, offset = hashlib.md5(), 0
                retries = _spend(retries, file.url, ProtocolError("range not honoured"))
                continue
            try:
                with file.part.open("ab") as fh:
                    # read1: whatever has arrived (up to CHUNK), so progress moves on slow
                    # links; raw bytes, so the md5 is of exactly what the source published.
                    while chunk := response.read1(CHUNK, decode_content=False):
                        fh.write(chunk)
                        digest.update(chunk)
                        offset += len(chunk)
                        self.progress.update(task, advance=len(chunk))
                        if overall is not None:
                            self.progress.update(overall, advance=len(chunk))
                response.release_conn()
                if file.size is None or offset >= file.size:
                    break
                raise ProtocolError(f"body ended after {offset} of {file.size} bytes")
            except (ProtocolError, ReadTimeoutError) as exc:
                # A dropped connection or a stalled read: resume from the part's length.
                response.drain_conn()
                retries = _spend(retries, file.url, exc)
        return digest.hexdigest(), offset

    def _restart(self, file: RemoteFile, task: TaskID, overall: TaskID | None, had: int) -> None:
        file.part.unlink(missing_ok=True)
        self.progress.update(task, completed=0)
        if overall is not None:
            self.progress.update(overall, advance=-had)


def _continues_at(response: BaseHTTPResponse, offset: int) -> bool:
    content_range = response.headers.get("Content-Range", "")
    return response.status == 206 and content_range.startswith(f"bytes {offset}-")


def _spend(retries: Retry, url: str, exc: Exception) -> Retry:
    """One retry of the file's budget (urllib3's counting and backoff), or a clear error."""
    try:
        retries = retries.increment("GET", url, error=exc)
    except MaxRetryError as final:
        raise DataError(f"{url}: gave up after retries: {describe(final.reason)}") from exc
    retries.sleep()
    return retries


def _resume_state(file: RemoteFile) -> tuple[hashlib._Hash, int]:
    """The md5 state and length of an existing part file (one that is too long restarts)."""
    digest = hashlib.md5()
    if not file.part.is_file():
        return digest, 0
    length = file.part.stat().st_size
    if file.size is not None and length > file.size:
        file.part.unlink()
        return digest, 0
    with file.part.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest, length


def _mismatch(file: RemoteFile, digest: str, length: int) -> str | None:
    if file.size is not None and length != file.size:
        return f"size {length} bytes, expected {file.size}"
    if file.md5 and digest.lower() != file.md5.lower():
        return f"md5 {digest}, expected {file.md5}"
    return None


def summarize(outcomes: Sequence[Outcome], what: str) -> str:
    """One line: how many files are complete, and the first few that are not (and why)."""
    bad = [o for o in outcomes if not o.ok]
    done = len(outcomes) - len(bad)
    if not bad:
        return f"{what}: all {len(outcomes)} file(s) complete and verified"
    examples = "; ".join(f"{o.file.path.name}: {o.status}: {o.detail}" for o in bad[:3])
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    return (
        f"{what}: {done} of {len(outcomes)} file(s) complete, {len(bad)} not: {examples}{more}; "
        "run the same command again to finish"
    )
