"""The NCT-CRC tile sets from Zenodo record 1214456 (Kather, Halama, Marx; CC-BY 4.0).

``GET {ZENODO}/api/records/1214456`` lists the record's files with ``key``, ``size``,
``checksum`` ("md5:<hex>") and a download link. The archive is downloaded (resumable,
md5-verified), unpacked safely next to the destination and moved into place as the
class-folder root (``<dest>/<CLASS>/<tile>.tif``), so ``bench run --dataset NAME`` finds it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from histobench.datasets.fetch.archive import class_folder_root, extract_zip
from histobench.datasets.fetch.download import (
    Downloader,
    RemoteFile,
    bytes_to_fetch,
    ensure_free_space,
    free_bytes,
    make_download_progress,
    summarize,
)
from histobench.datasets.fetch.http import HttpClient, format_bytes, zenodo_url
from histobench.datasets.fetch.records import FetchRecord, read_record
from histobench.plugins.errors import DataError

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ZenodoSet:
    name: str
    record: str
    key: str  # the file's name in the record


ZENODO_SETS = {
    s.name: s
    for s in (
        ZenodoSet("crc-val-he-7k", "1214456", "CRC-VAL-HE-7K.zip"),
        ZenodoSet("nct-crc-he-100k", "1214456", "NCT-CRC-HE-100K.zip"),
        ZenodoSet("nct-crc-he-100k-nonorm", "1214456", "NCT-CRC-HE-100K-NONORM.zip"),
    )
}


def download_dir(dest: Path) -> Path:
    """Archives and part files live beside the data set, never inside its class folders."""
    return dest.parent / f".{dest.name}.download"


def remote_archive(client: HttpClient, spec: ZenodoSet, folder: Path) -> RemoteFile:
    """The record's entry for ``spec.key`` as a file to download."""
    url = f"{zenodo_url()}/api/records/{spec.record}"
    record = client.get_json(url)
    entries = _file_entries(record, url)
    entry = next((e for e in entries if e.get("key") == spec.key), None)
    if entry is None:
        keys = ", ".join(str(e.get("key")) for e in entries) or "none"
        raise DataError(f"{url}: record has no file {spec.key!r} (files: {keys})")
    checksum = str(entry.get("checksum") or "")
    algorithm, _, digest = checksum.partition(":")
    if algorithm != "md5" or not digest:
        raise DataError(f"{url}: file {spec.key!r} has no md5 checksum (got {checksum!r})")
    links = entry.get("links") or {}
    link = links.get("content") or links.get("self") or links.get("download")
    if not link:
        link = f"{zenodo_url()}/api/records/{spec.record}/files/{spec.key}/content"
    size = entry.get("size", entry.get("filesize"))
    return RemoteFile(str(link), folder / spec.key, int(size) if size else None, digest)


def _file_entries(record: Any, url: str) -> list[dict[str, Any]]:
    files = record.get("files") if isinstance(record, dict) else None
    if isinstance(files, dict):  # InvenioRDM's native layout: {"entries": {key: entry}}
        files = list((files.get("entries") or {}).values())
    if not isinstance(files, list):
        raise DataError(f"{url}: the Zenodo record lists no files")
    return [f for f in files if isinstance(f, dict)]


def fetch_zenodo(
    spec: ZenodoSet,
    dest: Path,
    client: HttpClient,
    *,
    dry_run: bool = False,
    keep_archive: bool = False,
    say: Callable[[str], None] = print,
) -> str:
    """Download, verify and lay out one tile set; returns the closing line."""
    if read_record(dest, spec.name) is not None:
        return f"{spec.name}: already at {dest} (bench data verify {spec.name} re-checks it)"
    if dest.exists() and any(dest.iterdir()):
        raise DataError(
            f"{dest}: exists and was not fetched by histobench; move it away or pass --dest"
        )
    folder = download_dir(dest)
    archive = remote_archive(client, spec, folder)
    missing = bytes_to_fetch([archive])
    # Tiles barely compress: unpacking needs about the archive's size again.
    needed = missing + (archive.size or 0)
    if dry_run:
        say(f"{spec.name}: {archive.url}")
        say(
            f"  {spec.key}: {format_bytes(archive.size)} (md5 {archive.md5}); "
            f"{format_bytes(missing)} still to download; about {format_bytes(needed)} "
            f"of free disk needed ({format_bytes(free_bytes(folder))} free); unpacks to {dest}"
        )
        return f"{spec.name}: dry run, nothing downloaded"
    ensure_free_space(folder, needed, f"{spec.name} ({spec.key})")
    downloader = Downloader(client, folder / "quarantine", make_download_progress())
    outcome = downloader.fetch_all([archive], spec.name)[0]
    if not outcome.ok:
        raise DataError(summarize([outcome], spec.name))
    files = _unpack(archive.path, dest)
    FetchRecord(
        spec.name,
        {"zenodo_record": spec.record, "key": spec.key, "url": archive.url,
         "md5": archive.md5, "size": archive.size},
        {path: {"size": size, "crc32": crc} for path, (size, crc) in files.items()},
    ).write(dest)  # fmt: skip
    if not keep_archive:
        shutil.rmtree(folder, ignore_errors=True)
    classes = sorted(p.name for p in dest.iterdir() if p.is_dir() and not p.name.startswith("."))
    return (
        f"{spec.name}: {len(files)} tiles in {len(classes)} classes ({', '.join(classes)}) at "
        f"{dest}; use it with: bench run --task crc-tissue --dataset {spec.name}"
    )


def _unpack(archive: Path, dest: Path) -> dict[str, tuple[int, int]]:
    """Unpack into a staging folder, find the class-folder root, move it into place."""
    staging = dest.parent / f".{dest.name}.unpacking"
    try:
        files = extract_zip(archive, staging)
        root = class_folder_root(staging)
        if not any(
            sub.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in sub.iterdir())
            for sub in root.iterdir()
        ):
            raise DataError(f"{archive}: no class folders of tiles inside (<CLASS>/<tile>.tif)")
        prefix = root.relative_to(staging).as_posix()
        rebased = {
            (path[len(prefix) + 1 :] if prefix != "." else path): value
            for path, value in files.items()
            if prefix == "." or path.startswith(prefix + "/")
        }
        if dest.exists():
            dest.rmdir()  # empty (checked by the caller)
        dest.parent.mkdir(parents=True, exist_ok=True)
        root.rename(dest)
        return rebased
    finally:
        shutil.rmtree(staging, ignore_errors=True)
