"""Bad items inside a good data set are skipped, recorded and reported; too many stop the run."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from histobench.benchmark.images import BadImage, open_rgb
from tests.conftest import assert_one_line_error, small_run_config, write_textured_tiles

from .hostile import png_bomb, rgb_png, truncated


@pytest.fixture
def hostile_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Each hostile file with a word its recorded reason must contain."""
    good = rgb_png(tmp_path / "good.png")
    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(grey)
    i16 = tmp_path / "i16.png"
    Image.fromarray(np.zeros((16, 16), np.uint16)).save(i16)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.tif").write_text("this is not a TIFF")
    return {
        "bomb 100k": (png_bomb(tmp_path / "bomb.png"), "decompression bomb"),
        # Between Pillow's warning and error thresholds: Pillow would only warn and allocate.
        "bomb 10k": (png_bomb(tmp_path / "bomb10k.png", 10_000, 10_000), "decompression bomb"),
        "truncated": (truncated(tmp_path / "half.png", good), "cannot decode"),
        "zero bytes": (tmp_path / "empty.png", "not a readable image"),
        "text as tif": (tmp_path / "text.tif", "not a readable image"),
        "greyscale": (grey, "greyscale"),
        "16-bit": (i16, "greyscale"),
        "zero size": (png_bomb(tmp_path / "zero.png", 0, 16), "image"),
    }


def test_every_hostile_tile_is_a_bad_image_and_pillows_limit_stays(hostile_files) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    for name, (path, word) in hostile_files.items():
        with pytest.raises(BadImage) as caught:
            open_rgb(path)
        reason = str(caught.value)
        assert word in reason and "\n" not in reason, (name, reason)
    assert limit == Image.MAX_IMAGE_PIXELS and limit is not None


def _tiles_with(tmp_path: Path, bad: dict[str, Path]) -> Path:
    root = write_textured_tiles(tmp_path / "tiles", {"A": 11, "B": 11, "C": 10}, size=32)
    for name, source in bad.items():
        (root / "A" / name).write_bytes(source.read_bytes())
    return root


def _runs() -> list[tuple]:
    db = Path(os.environ["HISTOBENCH_HOME"]) / "results.sqlite"
    if not db.exists():
        return []
    return sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchall()


@pytest.mark.slow
def test_one_bomb_among_32_good_tiles_is_skipped_and_the_run_completes(
    cli, tmp_path: Path, hostile_files
) -> None:
    root = _tiles_with(tmp_path, {"A-bomb.png": hostile_files["bomb 100k"][0]})
    code, out, err = cli("run", "--config", small_run_config(tmp_path / "r.toml", root), "--json")
    assert code == 0, err
    record = json.loads(out)
    assert [s["item_id"] for s in record["skipped"]] == ["A/A-bomb.png"]
    assert "decompression bomb" in record["skipped"][0]["reason"]
    assert record["n_units"] == 32


@pytest.mark.slow
def test_skips_over_the_limit_stop_the_run_in_one_line_and_store_nothing(
    cli, tmp_path: Path, hostile_files
) -> None:
    bad = {f"A-bad{i}.png": hostile_files[k][0] for i, k in enumerate(["truncated", "bomb 10k"])}
    root = _tiles_with(tmp_path, bad)  # 2 of 34 items (5.9 %) > 5 %
    cfg = small_run_config(tmp_path / "r.toml", root)
    code, _, err = cli("run", "--config", cfg, "--json")
    assert code == 1
    assert_one_line_error(err, "2 of 34 items skipped", "max_skipped_fraction=0.05")
    assert _runs() == []
    cfg.write_text("max_skipped_fraction = 0.1\n" + cfg.read_text())  # the way out it names
    code, out, err = cli("run", "--config", cfg, "--json")
    assert code == 0, err
    assert len(json.loads(out)["skipped"]) == 2 and len(_runs()) == 1


def test_max_skipped_fraction_is_validated(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text('task = "crc-tissue"\nmax_skipped_fraction = 1.5\n')
    code, _, err = cli("run", "--config", cfg)
    assert code == 2
    assert_one_line_error(err, "max_skipped_fraction")


def _features_file(path: Path, features: np.ndarray) -> Path:
    with h5py.File(path, "w") as h5:
        h5["features"] = features
        h5["coords"] = np.zeros((len(features), 2), np.int64)
    return path


def test_corrupt_and_hostile_feature_files_are_skipped(tmp_path: Path) -> None:
    from histobench.datasets.cohort import load_cohort

    folder = tmp_path / "features"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        _features_file(folder / f"TCGA-AA-000{i}-01Z-00-DX1.h5", rng.normal(size=(5, 4)))
    good = (folder / "TCGA-AA-0000-01Z-00-DX1.h5").read_bytes()
    (folder / "TCGA-AA-0009-01Z-00-DX1.h5").write_bytes(good[: len(good) // 3])
    _features_file(folder / "TCGA-AA-0008-01Z-00-DX1.h5", np.array([[b"x", b"y"]] * 3))
    _features_file(folder / "TCGA-AA-0007-01Z-00-DX1.h5", np.full((2, 4), np.inf))
    maf = tmp_path / "m.tsv"
    maf.write_text("patient\tTP53\n" + "".join(f"TCGA-AA-000{i}\t{i % 2}\n" for i in range(10)))
    cohort = tmp_path / "c.toml"
    cohort.write_text('[cohort]\nfeatures = "features"\nmutations = "m.tsv"\n')
    dataset = load_cohort(str(cohort))
    assert dataset.embed is not None
    result = dataset.embed(None, dataset.items, None)
    reasons = {s.item_id: s.reason for s in result.skipped}
    assert set(reasons) == {
        "TCGA-AA-0007-01Z-00-DX1", "TCGA-AA-0008-01Z-00-DX1", "TCGA-AA-0009-01Z-00-DX1"
    }  # fmt: skip
    assert "corrupt or truncated" in reasons["TCGA-AA-0009-01Z-00-DX1"]
    assert "numbers" in reasons["TCGA-AA-0008-01Z-00-DX1"]
    assert result.features.shape == (3, 4)
