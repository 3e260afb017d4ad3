"""Feature cache: every (extractor, item) is embedded once, then read back forever.

Layout: ``HISTOBENCH_HOME/features/<extractor key>/<ab>/<item key>.fv``. The extractor key
digests the extractor's identity (architecture, weights digest, preprocessing) and the code
version; the item key is the item's content fingerprint. Each file carries its own checksum:
a truncated or corrupted file is detected, deleted and recomputed, never used. Writes go to a
temporary file renamed into place, so an interrupted extraction leaves only whole files and
simply resumes. The format is raw float32 plus a header (no pickles).

Several processes may share one cache (two ``bench run`` on one home): an entry is computed
by whichever process *claims* it first (an advisory lock, see :class:`EntryLocks`); the others
wait for it and read it back instead of computing it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from histobench.plugins.specs import digest

MAGIC = b"HBFEAT01"
_HEADER = struct.Struct("<8sI")  # magic, feature dimension
_CHECKSUM_BYTES = 16


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_CHECKSUM_BYTES).digest()


def encode(vector: np.ndarray) -> bytes:
    data = np.ascontiguousarray(vector, dtype="<f4")
    payload = _HEADER.pack(MAGIC, data.size) + data.tobytes()
    return payload + _checksum(payload)


def decode(blob: bytes) -> np.ndarray | None:
    """The stored vector, or None when the bytes are not a whole, intact feature file."""
    if len(blob) < _HEADER.size + _CHECKSUM_BYTES:
        return None
    payload, check = blob[:-_CHECKSUM_BYTES], blob[-_CHECKSUM_BYTES:]
    magic, dim = _HEADER.unpack_from(payload)
    if magic != MAGIC or len(payload) != _HEADER.size + 4 * dim or _checksum(payload) != check:
        return None
    return np.frombuffer(payload, dtype="<f4", offset=_HEADER.size).copy()


class FeatureCache:
    """The cached features of one extractor identity."""

    def __init__(self, root: Path, identity: dict[str, Any], code_version: str) -> None:
        self.identity = {**identity, "code_version": code_version}
        self.key = digest(self.identity, length=24)
        self.dir = root / self.key
        self.corrupt_found = 0
        # Set when this identity was cached before under other feature code: those features
        # are not reused (they may differ) and the caller says so in one line.
        self.superseded: list[str] = [] if self.dir.exists() else self._older_versions(root)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.locks = EntryLocks(self.dir / ".locks")
        manifest = self.dir / "identity.json"
        if not manifest.exists():  # what this folder holds: plain JSON, for humans and notices
            _atomic_write(manifest, json.dumps(self.identity, indent=2, default=str).encode())

    def _older_versions(self, root: Path) -> list[str]:
        """Code versions under which the same extractor identity was cached before."""
        bare = {k: v for k, v in self.identity.items() if k != "code_version"}
        found = []
        for manifest in root.glob("*/identity.json"):
            try:
                other = json.loads(manifest.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(other, dict):
                continue
            version = other.pop("code_version", None)
            if version is not None and json.loads(json.dumps(bare, default=str)) == other:
                found.append(str(version))
        return sorted(found)

    def path(self, item_key: str) -> Path:
        return self.dir / item_key[:2] / f"{item_key}.fv"

    def get(self, item_key: str) -> np.ndarray | None:
        path = self.path(item_key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        vector = decode(blob)
        if vector is None:
            # Damaged (truncated write, disk error): drop it so it is recomputed.
            self.corrupt_found += 1
            path.unlink(missing_ok=True)
        return vector

    def get_many(self, item_keys: Sequence[str]) -> tuple[list[np.ndarray | None], list[int]]:
        """Vectors in order (None where missing) and the indices still to compute."""
        vectors = [self.get(k) for k in item_keys]
        return vectors, [i for i, v in enumerate(vectors) if v is None]

    def put(self, item_key: str, vector: np.ndarray) -> None:
        path = self.path(item_key)
        path.parent.mkdir(exist_ok=True)
        _atomic_write(path, encode(vector))


class EntryLocks:
    """Per-entry advisory locks between processes: one byte of a lock file per entry key.

    POSIX record locks (``lockf``) on a single file descriptor, so thousands of entries in
    flight cost one open file; the kernel drops a process's locks when it dies (``kill -9``
    included), so a crashed writer never blocks the others. Record locks belong to the
    process and vanish when *any* descriptor of the file is closed in it, hence one descriptor
    per lock file per process, kept open for the process's life. Where ``fcntl`` is missing
    (not POSIX) every claim succeeds: correct, only without the saved work.
    """

    _open: dict[str, int] = {}

    def __init__(self, path: Path) -> None:
        self.fd: int | None = None
        try:
            import fcntl  # noqa: F401
        except ImportError:
            return
        key = str(path.resolve())
        if key not in EntryLocks._open:
            EntryLocks._open[key] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.fd = EntryLocks._open[key]

    @staticmethod
    def _offset(item_key: str) -> int:
        # 62 bits of the key's hash: distinct entries effectively never share a byte.
        return int.from_bytes(hashlib.blake2b(item_key.encode(), digest_size=8).digest()) >> 2

    def _lock(self, item_key: str, flags: int) -> bool:
        if self.fd is None:
            return True
        import fcntl

        try:
            fcntl.lockf(self.fd, flags, 1, self._offset(item_key))
        except (BlockingIOError, PermissionError):
            return False
        return True

    def claim(self, item_key: str) -> bool:
        """Take the entry's lock without waiting; False when another process holds it."""
        import fcntl

        return self._lock(item_key, fcntl.LOCK_EX | fcntl.LOCK_NB) if self.fd is not None else True

    def release(self, item_key: str) -> None:
        if self.fd is not None:
            import fcntl

            self._lock(item_key, fcntl.LOCK_UN)

    def wait(self, item_key: str) -> None:
        """Block until no other process holds the entry (it finished, gave up or died)."""
        if self.fd is not None:
            import fcntl

            self._lock(item_key, fcntl.LOCK_EX)
            self._lock(item_key, fcntl.LOCK_UN)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
