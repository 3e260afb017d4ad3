"""``bench data fetch crc-val-he-7k`` from a local Zenodo, then ``bench run`` finds it by name."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import assert_one_line_error
from tests.datasets.fetch.conftest import FAST_FLAGS
from tests.datasets.fetch.fake_services import FakeServices, Fault

RECORD = "1214456"
KEY = "CRC-VAL-HE-7K.zip"
CONTENT = f"/api/records/{RECORD}/files/{KEY}/content"


def _tile_zip(shared_data: Path) -> bytes:
    """Zenodo's layout (top folder CRC-VAL-HE-7K/) with the 9 real tiles, one per class, and
    two flipped copies of each so every class can be split in two folds."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for tile in sorted((shared_data / "crc-sample").glob("*/*.tif")):
            cls = tile.parent.name
            image = Image.open(tile).convert("RGB")
            variants = [image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                        image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)]  # fmt: skip
            for i, variant in enumerate(variants):
                out = io.BytesIO()
                variant.save(out, format="TIFF")
                zf.writestr(f"CRC-VAL-HE-7K/{cls}/{tile.stem}-{i}.tif", out.getvalue())
    return buffer.getvalue()


@pytest.fixture
def zenodo(services: FakeServices, shared_data: Path) -> FakeServices:
    services.add_zenodo_file(RECORD, "NCT-CRC-HE-100K.zip", b"not fetched in this test")
    services.add_zenodo_file(RECORD, KEY, _tile_zip(shared_data))
    return services


def test_fetch_then_run_by_name(cli, zenodo, hb_home):
    zenodo.faults[CONTENT] = [Fault("status", 500), Fault("drop", after=20_000)]
    code, out, err = cli("data", "fetch", "crc-val-he-7k", *FAST_FLAGS)
    assert code == 0, err
    dest = hb_home / "data" / "crc-val-he-7k"
    assert "27 tiles in 9 classes" in out
    classes = sorted(p.name for p in dest.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert classes == ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]
    assert not (hb_home / "data" / ".crc-val-he-7k.download").exists()  # archive removed
    requests = zenodo.content_requests(CONTENT)
    assert requests[0] == "" and requests[-1].startswith("bytes=")  # retried, then resumed

    code, out, _ = cli("data", "list", "--json")
    status = {row["name"]: row["status"] for row in json.loads(out)}
    assert status["crc-val-he-7k"] == "present (27 files)"
    assert status["nct-crc-he-100k"] == "absent"

    code, out, err = cli("data", "verify", "crc-val-he-7k")
    assert code == 0 and "all 27 file(s) match" in out, err

    code, out, err = cli(
        "run", "--extractor", "effnet-lite0", "--task", "crc-tissue",
        "--dataset", "crc-val-he-7k", "--repeats", "2", "--folds", "2", "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["task"] == "crc-tissue" and len(result["scores"]) == 2
    assert len(result["fold_scores"][0]) == 2


def test_a_second_fetch_is_a_no_op_and_verify_catches_a_changed_tile(cli, zenodo, hb_home):
    assert cli("data", "fetch", "crc-val-he-7k", *FAST_FLAGS)[0] == 0
    before = len(zenodo.content_requests(CONTENT))
    code, out, _ = cli("data", "fetch", "crc-val-he-7k", *FAST_FLAGS)
    assert code == 0 and "already at" in out
    assert len(zenodo.content_requests(CONTENT)) == before
    tile = next((hb_home / "data" / "crc-val-he-7k" / "TUM").glob("*.tif"))
    data = bytearray(tile.read_bytes())
    data[-1] ^= 0xFF
    tile.write_bytes(bytes(data))
    code, _, err = cli("data", "verify", "crc-val-he-7k")
    assert code == 1
    assert_one_line_error(err, "1 of 27 file(s) bad", f"TUM/{tile.name}", "crc32")


def test_a_corrupted_download_is_quarantined_and_nothing_is_unpacked(cli, zenodo, hb_home):
    zenodo.faults[CONTENT] = [Fault("corrupt")]
    code, _, err = cli("data", "fetch", "crc-val-he-7k", *FAST_FLAGS)
    assert code == 1
    assert_one_line_error(err, "crc-val-he-7k: 0 of 1 file(s) complete", "md5", "quarantined")
    assert not (hb_home / "data" / "crc-val-he-7k").exists()
    kept = list((hb_home / "data" / ".crc-val-he-7k.download" / "quarantine").glob("*.quarantined"))
    assert len(kept) == 1
    code, _, err = cli("data", "fetch", "crc-val-he-7k", *FAST_FLAGS)  # the rerun finishes
    assert code == 0, err


def test_dry_run_prints_bytes_and_downloads_nothing(cli, zenodo, hb_home):
    code, out, err = cli("data", "fetch", "crc-val-he-7k", "--dry-run")
    assert code == 0, err
    size = zenodo.records[RECORD][1]["size"]
    assert KEY in out and "still to download" in out and "dry run" in out
    assert f"{size / 1000:.1f} kB" in out or f"{size / 1e6:.1f} MB" in out
    assert zenodo.content_requests(CONTENT) == []
    assert not (hb_home / "data" / "crc-val-he-7k").exists()


def test_a_missing_record_is_a_one_line_error_naming_url_and_status(cli, services):
    services.missing_records.add(RECORD)
    code, _, err = cli("data", "fetch", "crc-val-he-7k", *FAST_FLAGS)
    assert code == 1
    assert_one_line_error(err, f"{services.base}/api/records/{RECORD}: HTTP 404")


def test_a_set_larger_than_the_disk_is_refused_before_downloading(cli, services):
    services.add_zenodo_file(RECORD, KEY, b"tiny", size=10**18)
    code, _, err = cli("data", "fetch", "crc-val-he-7k", *FAST_FLAGS)
    assert code == 1
    assert_one_line_error(err, "not enough free disk")
    assert services.content_requests(CONTENT) == []


def test_a_folder_already_there_is_not_overwritten(cli, zenodo, hb_home):
    dest = hb_home / "data" / "crc-val-he-7k" / "ADI"
    dest.mkdir(parents=True)
    (dest / "mine.tif").write_bytes(b"user data")
    code, _, err = cli("data", "fetch", "crc-val-he-7k", *FAST_FLAGS)
    assert code == 1
    assert_one_line_error(err, "exists and was not fetched by histobench")
    assert (dest / "mine.tif").read_bytes() == b"user data"
