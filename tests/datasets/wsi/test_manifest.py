from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from histobench.benchmark.runner import pooled_features
from histobench.datasets.wsi.manifest import (
    SlideRecord,
    load_slide_records,
    process_slides,
    read_manifest,
    scan_slide_folder,
)
from histobench.datasets.wsi.patients import (
    assign_patients,
    group_by_patient,
    patient_from_barcode,
)
from histobench.datasets.wsi.reader import open_slide
from histobench.datasets.wsi.tiling import TilingConfig, plan_tiles
from histobench.plugins.errors import DataError

DX = "TCGA-55-8507-01Z-00-DX1.3C6198CF-3E13-4C4C-B851-5BDFF8552621"


@pytest.mark.parametrize(
    ("name", "patient"),
    [
        (f"{DX}.svs", "TCGA-55-8507"),
        ("TCGA-55-8507-01A-01-TS1", "TCGA-55-8507"),
        ("tcga-75-7030-01z-00-dx1.svs", "TCGA-75-7030"),
        ("TCGA-75-7030", "TCGA-75-7030"),
        ("TCGA-75-70301-01Z", None),  # participant code is exactly 4 characters
        ("CMU-1-Small-Region", None),
        ("slide_TCGA-55-8507", None),  # a barcode must start the name
    ],
)
def test_patient_from_barcode(name: str, patient: str | None) -> None:
    assert patient_from_barcode(name) == patient


def test_manifest_paths_patients_and_mpp(tmp_path: Path) -> None:
    (tmp_path / "slides").mkdir()
    csv = tmp_path / "manifest.csv"
    csv.write_text(
        "path,Patient,mpp,stage,notes\n"
        f"slides/{DX}.svs,,,II,x\n"
        "slides/b.svs,P7,0.5,I,\n"
        "/abs/c.tiff,P7, ,III,\n"
    )
    records = read_manifest(csv)
    assert records == [
        SlideRecord(DX, tmp_path / "slides" / f"{DX}.svs", "TCGA-55-8507", None),
        SlideRecord("b", tmp_path / "slides" / "b.svs", "P7", 0.5),
        SlideRecord("c", Path("/abs/c.tiff"), "P7", None),
    ]
    assert load_slide_records(csv) == records
    assert list(group_by_patient(records)) == ["TCGA-55-8507", "P7"]


def test_manifest_errors_name_the_csv(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("file,patient\na.svs,P1\n")
    with pytest.raises(DataError, match=r"m\.csv.*'path' column"):
        read_manifest(csv)
    csv.write_text("path,mpp\na.svs,fast\n")
    with pytest.raises(DataError, match=r"m\.csv: line 2: 'mpp'"):
        read_manifest(csv)
    csv.write_text("path\na.svs\nsub/a.svs\n")
    with pytest.raises(DataError, match="duplicate slide id 'a'"):
        read_manifest(csv)
    csv.write_text("path\n")
    with pytest.raises(DataError, match="lists no slides"):
        read_manifest(csv)
    with pytest.raises(DataError, match="absent.csv"):
        read_manifest(tmp_path / "absent.csv")


def test_scan_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in (f"{DX}.svs", "sub/other.NDPI", "notes.txt", "thumb.png"):
        (tmp_path / name).write_bytes(b"")
    records = scan_slide_folder(tmp_path)
    assert [(r.slide_id, r.patient) for r in records] == [
        (DX, "TCGA-55-8507"),
        ("other", None),
    ]
    assert scan_slide_folder(tmp_path, recursive=False)[0].slide_id == DX
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no slide files"):
        scan_slide_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="not found"):
        scan_slide_folder(tmp_path / "absent")
    with pytest.raises(DataError, match="folder of slides or a manifest"):
        load_slide_records(tmp_path / "notes.txt")


def test_assign_patients_fills_only_missing() -> None:
    records = [SlideRecord(DX, Path("a.svs")), SlideRecord("x", Path("x.svs"), "P1")]
    assert [r.patient for r in assign_patients(records)] == ["TCGA-55-8507", "P1"]


def test_patients_pool_tiles_across_slides() -> None:
    # Slides → one mean row each with its tile count (as the engine returns them); a patient
    # is the mean over all its slides' tiles, so the counts weight the rows.
    records = [
        SlideRecord("s1", Path("s1"), "P1"),
        SlideRecord("s2", Path("s2"), "P1"),
        SlideRecord("s3", Path("s3"), "P2"),
    ]
    tiles = {
        "s1": np.array([[0.0, 0.0]]),
        "s2": np.array([[3.0, 6.0], [3.0, 6.0]]),
        "s3": np.array([[1.0, 2.0]]),
    }
    rows = np.stack([tiles[r.slide_id].mean(axis=0) for r in records])
    counts = np.array([len(tiles[r.slide_id]) for r in records], dtype=np.float64)
    position = {r.slide_id: i for i, r in enumerate(records)}
    groups = group_by_patient(records)
    members = [np.array([position[r.slide_id] for r in groups[p]]) for p in sorted(groups)]
    pooled = pooled_features(rows, members, counts)
    np.testing.assert_allclose(pooled[0], [2.0, 4.0])  # tile-weighted, not slide-weighted (1.5, 3)
    np.testing.assert_allclose(pooled[1], [1.0, 2.0])


def test_corrupt_slide_is_recorded_and_others_continue(tmp_path: Path, pyramid_path: Path) -> None:
    shutil.copy(pyramid_path, tmp_path / "good1.tif")
    (tmp_path / "broken.svs").write_bytes(np.random.default_rng(1).bytes(20_000))
    shutil.copy(pyramid_path, tmp_path / "good2.tif")
    records = scan_slide_folder(tmp_path) + [SlideRecord("gone", tmp_path / "gone.svs")]

    def count_tiles(record: SlideRecord) -> int:
        with open_slide(record.path, record.mpp) as slide:
            return len(plan_tiles(slide, TilingConfig(target_mpp=1.0, tile_px=64)))

    seen: list[str] = []
    outcomes = process_slides(
        records, count_tiles, on_outcome=lambda o: seen.append(o.record.slide_id)
    )
    by_id = {o.record.slide_id: o for o in outcomes}
    assert seen == ["broken", "good1", "good2", "gone"]
    assert (
        by_id["good1"].ok and by_id["good2"].ok and by_id["good1"].result == by_id["good2"].result
    )
    assert by_id["good1"].result and by_id["good1"].result > 0
    assert not by_id["broken"].ok and "broken.svs" in (by_id["broken"].reason or "")
    assert not by_id["gone"].ok and "not found" in (by_id["gone"].reason or "")


def test_programming_errors_are_not_swallowed() -> None:
    def buggy(record: SlideRecord) -> None:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        process_slides([SlideRecord("a", Path("a.svs"))], buggy)
