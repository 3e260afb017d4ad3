"""Safe extraction: hostile archives are refused before anything is written."""

from __future__ import annotations

import stat
import zipfile
import zlib
from pathlib import Path

import pytest

from histobench.datasets.fetch.archive import class_folder_root, extract_zip
from histobench.plugins.errors import DataError


def _zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.parametrize(
    "hostile",
    ["../evil", "CRC/../../evil", "/tmp/abs-evil", "C:/evil", "..\\evil"],
)
def test_traversal_and_absolute_members_are_refused_and_nothing_is_written(tmp_path, hostile):
    box = tmp_path / "box"
    box.mkdir()
    archive = _zip(tmp_path / "bad.zip", {"CRC/ADI/a.tif": b"ok", hostile: b"evil"})
    staging = box / "staging"
    before = _tree(tmp_path)
    with pytest.raises(DataError, match="refused") as err:
        extract_zip(archive, staging)
    assert repr(hostile) in str(err.value)  # the member is named
    assert _tree(tmp_path) == before  # nothing at all: not the good member, not the evil one
    assert not Path("/tmp/abs-evil").exists()


def test_links_are_refused(tmp_path):
    archive = _zip(tmp_path / "link.zip", {"CRC/ADI/a.tif": b"ok"}, {"CRC/ADI/up": "../../.."})
    with pytest.raises(DataError, match="link"):
        extract_zip(archive, tmp_path / "staging")
    assert not (tmp_path / "staging").exists()


def test_a_damaged_member_stops_extraction(tmp_path):
    archive = _zip(tmp_path / "dmg.zip", {"CRC/ADI/a.tif": b"x" * 5000})
    raw = bytearray(archive.read_bytes())
    at = raw.find(b"x" * 100)
    raw[at + 10] ^= 0xFF  # stored data flipped: the CRC no longer matches
    archive.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="damaged"):
        extract_zip(archive, tmp_path / "staging")


def test_not_a_zip_is_a_clear_error(tmp_path):
    bogus = tmp_path / "x.zip"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable zip"):
        extract_zip(bogus, tmp_path / "staging")


def test_a_good_archive_unpacks_with_sizes_and_crcs(tmp_path):
    members = {"CRC-VAL-HE-7K/ADI/a.tif": b"a" * 10, "CRC-VAL-HE-7K/TUM/b.tif": b"bb"}
    archive = _zip(tmp_path / "ok.zip", {**members, "__MACOSX/._a.tif": b"meta"})
    files = extract_zip(archive, tmp_path / "staging")
    assert files == {name: (len(data), zlib.crc32(data)) for name, data in members.items()}
    root = class_folder_root(tmp_path / "staging")
    assert root.name == "CRC-VAL-HE-7K"
    assert (root / "ADI" / "a.tif").read_bytes() == b"a" * 10
    assert not (tmp_path / "staging" / "__MACOSX").exists()
