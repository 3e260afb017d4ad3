"""Tile folders: patients from TCGA barcodes in file names or from a patients map."""

from __future__ import annotations

from pathlib import Path

import pytest

from histobench.datasets.tile_folder import TileFolderOptions, load_tile_folder
from histobench.plugins.errors import DataError
from tests.conftest import write_textured_tiles


def _tiles(tmp_path: Path) -> Path:
    return write_textured_tiles(tmp_path / "tiles", {"A": 4, "B": 4}, size=16)


def test_tiles_without_patient_ids_are_ungrouped(tmp_path: Path) -> None:
    ds = load_tile_folder(str(_tiles(tmp_path)), TileFolderOptions())
    assert all(it.patient is None for it in ds.items)  # NCT-CRC / CRC-VAL-HE-7K naming


def test_tcga_barcodes_in_tile_names_give_patient_and_site(tmp_path: Path) -> None:
    root = _tiles(tmp_path)
    (root / "A" / "A-000.png").rename(root / "A" / "blk-XYZ-TCGA-AA-3562-01Z-00-DX1.png")
    (root / "B" / "B-001.png").rename(root / "B" / "TCGA-55-8507-01Z_12_34.png")
    (root / "B" / "B-002.png").rename(root / "B" / "xTCGA-55-85071.png")  # not a barcode
    ds = load_tile_folder(str(root), TileFolderOptions())
    by_id = {it.item_id: it for it in ds.items}
    tile = by_id["A/blk-XYZ-TCGA-AA-3562-01Z-00-DX1.png"]
    assert tile.patient == "TCGA-AA-3562" and tile.meta["site"] == "AA"
    assert by_id["B/TCGA-55-8507-01Z_12_34.png"].patient == "TCGA-55-8507"
    assert by_id["B/xTCGA-55-85071.png"].patient is None


def test_patients_map_by_file_name_or_path(tmp_path: Path) -> None:
    root = _tiles(tmp_path)
    rows = ["item,patient,site", "A-000.png,P1,H1", "A/A-001.png,P1,H1", "B-000.png,P2,"]
    rows += [f"{c}-{i:03d}.png,P{i},H{i % 2}" for c in "AB" for i in range(2, 4)]
    rows += ["B-001.png,TCGA-44-0001", "not-here.png,P9,H9"]  # extra rows are ignored
    (tmp_path / "map.csv").write_text("\n".join(rows) + "\n")
    ds = load_tile_folder(str(root), TileFolderOptions(patients_map=tmp_path / "map.csv"))
    by_id = {it.item_id: it for it in ds.items}
    assert by_id["A/A-000.png"].patient == "P1" and by_id["A/A-001.png"].patient == "P1"
    assert by_id["A/A-000.png"].meta["site"] == "H1"
    assert by_id["B/B-000.png"].meta["site"] is None
    assert by_id["B/B-001.png"].meta["site"] == "44"  # from the patient's barcode
    assert len(ds.items) == 8 and not ds.skipped


def test_tiles_missing_from_the_map_are_skipped_and_reported(tmp_path: Path) -> None:
    root = _tiles(tmp_path)
    (tmp_path / "map.csv").write_text("item,patient\nA-000.png,P1\nB-000.png,P2\n")
    ds = load_tile_folder(str(root), TileFolderOptions(patients_map=tmp_path / "map.csv"))
    assert [it.item_id for it in ds.items] == ["A/A-000.png", "B/B-000.png"]
    assert len(ds.skipped) == 6 and "not in the patients map map.csv" in ds.skipped[0].reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,who\nA-000.png,P1\n", "needs the columns item,patient[,site] (found: name,who)"),
        ("item,patient\nA-000.png,\n", "line 2: empty item or patient"),
        ("item,patient\nA-000.png,P1\nA/A-000.png,P2\n", "line 3: A/A-000.png is already"),
        ("item,patient\nnothing.png,P1\n", "names none of the 8 tiles"),
    ],
)
def test_bad_patients_maps_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    root = _tiles(tmp_path)
    (tmp_path / "map.csv").write_text(text)
    with pytest.raises(DataError, match="map.csv") as info:
        load_tile_folder(str(root), TileFolderOptions(patients_map=tmp_path / "map.csv"))
    assert message in str(info.value)


def test_ambiguous_file_name_needs_the_path(tmp_path: Path) -> None:
    root = _tiles(tmp_path)
    (root / "B" / "B-000.png").rename(root / "B" / "A-000.png")
    (tmp_path / "map.csv").write_text("item,patient\nA-000.png,P1\n")
    with pytest.raises(DataError, match="'A-000.png' matches 2 tiles"):
        load_tile_folder(str(root), TileFolderOptions(patients_map=tmp_path / "map.csv"))
