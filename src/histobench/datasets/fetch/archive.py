"""Safe zip extraction: every member is checked before anything is written.

Refused (the whole archive, with a one-line error naming the member): absolute paths, drive
letters, ``..`` components, symbolic links and other special files, duplicate names, a total
size beyond what the disk holds. Members are extracted with their declared sizes enforced: a
member that inflates past its declared size, or fails its CRC, stops the extraction. Members
go into a staging folder next to the destination, so a failed extraction never leaves a
half-filled data set behind.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from histobench.datasets.fetch.download import ensure_free_space
from histobench.plugins.errors import DataError

# Metadata folders some zip tools add; they hold no data.
_IGNORED_TOP = ("__MACOSX",)


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    relative: PurePosixPath  # checked, relative, no '..'


def _checked_name(archive: Path, name: str) -> PurePosixPath:
    raw = name.replace("\\", "/")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise DataError(f"{archive}: refused: member {name!r} has an absolute path")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise DataError(f"{archive}: refused: member {name!r} points outside the destination")
    if not parts:
        raise DataError(f"{archive}: refused: member with an empty name")
    return PurePosixPath(*parts)


def _is_link_or_special(info: zipfile.ZipInfo) -> bool:
    kind = stat.S_IFMT(info.external_attr >> 16)
    # No type bits: made on Windows or by Python's writestr, a plain file or folder.
    return kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def checked_members(archive: Path, zf: zipfile.ZipFile) -> list[Member]:
    """All members, validated; raises before anything is written."""
    members: list[Member] = []
    seen: set[str] = set()
    for info in zf.infolist():
        relative = _checked_name(archive, info.filename)
        if relative.parts[0] in _IGNORED_TOP:
            continue
        if _is_link_or_special(info):
            raise DataError(
                f"{archive}: refused: member {info.filename!r} is a link or special file"
            )
        key = relative.as_posix().lower()
        if key in seen and not info.is_dir():
            raise DataError(f"{archive}: refused: member {info.filename!r} appears twice")
        seen.add(key)
        members.append(Member(info, relative))
    return members


def extract_zip(archive: Path, staging: Path) -> dict[str, tuple[int, int]]:
    """Extract into an empty ``staging`` folder; {relative path: (size, crc32)} of the files."""
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{archive}: not a readable zip archive: {exc}") from exc
    with zf:
        members = checked_members(archive, zf)
        declared = sum(m.info.file_size for m in members if not m.info.is_dir())
        ensure_free_space(staging, declared, f"unpacking {archive.name}")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        root = staging.resolve()
        files: dict[str, tuple[int, int]] = {}
        written = 0
        for member in members:
            target = staging.joinpath(*member.relative.parts)
            if not target.resolve().is_relative_to(root):  # belt and braces after the name check
                raise DataError(f"{archive}: refused: member {member.info.filename!r} escapes")
            if member.info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            size, crc = _copy_member(archive, zf, member, target)
            files[member.relative.as_posix()] = (size, crc)
            written += size
    if written != declared:
        raise DataError(f"{archive}: unpacked {written} bytes, the archive declares {declared}")
    return files


def _copy_member(
    archive: Path, zf: zipfile.ZipFile, member: Member, target: Path
) -> tuple[int, int]:
    """Copy one member, never more than its declared size; zipfile checks the CRC at the end."""
    limit = member.info.file_size
    size, crc = 0, 0
    try:
        with zf.open(member.info) as src, target.open("xb") as dst:
            while block := src.read(1 << 20):
                size += len(block)
                if size > limit:
                    raise DataError(
                        f"{archive}: member {member.info.filename!r} is larger than declared"
                    )
                crc = zlib.crc32(block, crc)
                dst.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(f"{archive}: member {member.info.filename!r} is damaged: {exc}") from exc
    return size, crc


def class_folder_root(staging: Path) -> Path:
    """The folder holding the class folders: Zenodo's zips wrap them in one top folder
    (``CRC-VAL-HE-7K/ADI/...``), sometimes two; descend through single-folder levels."""
    current = staging
    for _ in range(8):  # bounded: archives nest at most a couple of levels
        entries = [p for p in current.iterdir() if not p.name.startswith(".")]
        dirs = [p for p in entries if p.is_dir()]
        if len(dirs) == 1 and len(entries) == 1:
            current = dirs[0]
            continue
        break
    return current


def crc32_of(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            crc = zlib.crc32(block, crc)
    return crc
