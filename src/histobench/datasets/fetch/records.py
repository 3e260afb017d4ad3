"""What a fetch left on disk, written when it completes, and ``bench data verify``.

``<root>/.histobench-fetch/<name>.json`` lists every file with its size and checksum (the
source's md5 for downloaded files, the archive's CRC-32 for unpacked tiles), so a data set can
be re-checked long after its archive is gone. The folder is hidden: the tile-folder reader
skips it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from histobench.datasets.fetch.archive import crc32_of
from histobench.datasets.fetch.download import make_download_progress, md5_of
from histobench.plugins.errors import DataError

RECORD_DIR = ".histobench-fetch"


def record_path(root: Path, name: str) -> Path:
    return root / RECORD_DIR / f"{name}.json"


@dataclass
class FetchRecord:
    name: str
    source: dict[str, Any]
    # Paths relative to the root, POSIX style → {"size": n, "md5": hex} or {"size", "crc32"}.
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(self, root: Path) -> Path:
        from histobench import __version__

        path = record_path(root, self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "name": self.name,
            "source": self.source,
            "files": self.files,
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "histobench": __version__,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
        return path


def read_record(root: Path, name: str) -> FetchRecord | None:
    path = record_path(root, name)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return FetchRecord(str(data["name"]), dict(data["source"]), dict(data["files"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable fetch record ({exc}); fetch {name} again") from exc


@dataclass(frozen=True)
class VerifyReport:
    name: str
    checked: int
    problems: list[str]

    def line(self) -> str:
        if not self.problems:
            return f"{self.name}: all {self.checked} file(s) match their checksums"
        shown = "; ".join(self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        return f"{self.name}: {len(self.problems)} of {self.checked} file(s) bad: {shown}{more}"


def verify_record(root: Path, record: FetchRecord) -> VerifyReport:
    """Re-read every file of the record and compare size and checksum."""
    problems: list[str] = []
    total = sum(int(meta.get("size") or 0) for meta in record.files.values())
    progress = make_download_progress()
    with progress:
        task = progress.add_task(f"verify {record.name}", total=total or None)
        for relative, meta in sorted(record.files.items()):
            problem = _check_file(root / relative, meta)
            if problem:
                problems.append(f"{relative}: {problem}")
            progress.update(task, advance=int(meta.get("size") or 0))
    return VerifyReport(record.name, len(record.files), problems)


def _check_file(path: Path, meta: dict[str, Any]) -> str | None:
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if meta.get("size") is not None and size != int(meta["size"]):
        return f"size {size}, expected {meta['size']}"
    if meta.get("md5"):
        digest = md5_of(path)
        if digest != str(meta["md5"]).lower():
            return f"md5 {digest}, expected {meta['md5']}"
    elif meta.get("crc32") is not None:
        crc = crc32_of(path)
        if crc != int(meta["crc32"]):
            return f"crc32 {crc:08x}, expected {int(meta['crc32']):08x}"
    return None
