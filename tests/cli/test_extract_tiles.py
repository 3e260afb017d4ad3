"""``bench extract --out``: the tile features of a tile folder in one HDF5 file, and the
flag groups of ``bench extract`` (contributed by data set plugins) refused where they do
not apply."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from tests.conftest import assert_one_line_error

EXTRACT = ("extract", "--extractor", "effnet-lite0", "--option", "input_size=64")


@pytest.fixture
def crc_tiles(shared_data: Path, tmp_path: Path) -> Path:
    """The nine real tiles in their class folders, plus one corrupt tile beside them."""
    root = shutil.copytree(shared_data / "crc-sample", tmp_path / "crc")
    (root / "TUM" / "TUM-BROKEN.tif").write_bytes(b"II*\x00" + b"\x00" * 64)
    return root


def _read(path: Path) -> tuple[np.ndarray, list[str], dict]:
    with h5py.File(path, "r") as h5:
        assert set(h5.keys()) == {"features", "item_ids"}
        assert h5.attrs["feature_dtype"] == str(h5["features"].dtype)
        ids = [i.decode("utf-8") for i in h5["item_ids"][()]]
        return h5["features"][()], ids, dict(h5.attrs)


def test_tile_folder_export_reads_back_with_h5py(cli, crc_tiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "export" / "features.h5"
    code, stdout, err = cli(*EXTRACT, "--dataset", crc_tiles, "--out", out, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["out"] == str(out) and summary["embedded"] == 9
    assert [s["item_id"] for s in summary["skipped"]] == ["TUM/TUM-BROKEN.tif"]
    features, ids, attrs = _read(out)
    expected_ids = sorted(p.relative_to(crc_tiles).as_posix() for p in crc_tiles.glob("*/*.tif"))
    expected_ids.remove("TUM/TUM-BROKEN.tif")
    assert sorted(ids) == expected_ids and len(set(ids)) == 9
    assert features.shape == (9, 1280) and features.dtype == np.float32
    assert attrs["extractor"] == "effnet-lite0" and attrs["feature_dim"] == 1280
    assert attrs["extractor_identity_digest"] == summary["cache_key"]
    assert attrs["histobench_version"].startswith("0.") and attrs["n_skipped"] == 1
    assert "TUM/TUM-BROKEN.tif" in attrs["skipped"]
    assert [p.name for p in out.parent.iterdir()] == ["features.h5"]  # no temporary left

    # Each row is that tile's features, computed here one tile at a time.
    from histobench.plugins.manager import get_plugins
    from histobench.plugins.specs import Runtime

    spec = get_plugins().extractors.get("effnet-lite0").spec
    extractor = spec.factory(spec.options_model(input_size=64), Runtime("cpu"))
    for row, item_id in zip(features, ids, strict=True):
        tile = Image.open(crc_tiles / item_id).convert("RGB")
        alone = extractor.embed(extractor.preprocess(tile)[None]).numpy()[0]
        np.testing.assert_allclose(row, alone, rtol=1e-4, atol=1e-5)

    # float16: the same features rounded; they come from the cache filled by the first run.
    half = tmp_path / "half.h5"
    code, stdout, err = cli(*EXTRACT, "--dataset", crc_tiles, "--out", half, "--dtype",
                            "float16", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["cached"] == 9
    features16, ids16, attrs16 = _read(half)
    assert features16.dtype == np.float16 and attrs16["feature_dtype"] == "float16"
    assert ids16 == ids
    np.testing.assert_array_equal(features16, features.astype(np.float16))


def test_without_out_the_cache_is_filled_and_no_file_written(
    cli, crc_tiles: Path, tmp_path: Path, hb_home: Path
) -> None:
    code, stdout, err = cli(*EXTRACT, "--dataset", crc_tiles)
    assert code == 0, err
    assert "9/10 items embedded" in stdout and "TUM/TUM-BROKEN.tif" in err
    assert not list(tmp_path.glob("*.h5"))
    code, stdout, _ = cli(*EXTRACT, "--dataset", crc_tiles, "--json")
    assert json.loads(stdout)["cached"] == 9


def test_flags_of_other_data_sets_and_bad_outputs_are_one_line_errors(
    cli, tiny_tiles: Path, tmp_path: Path
) -> None:
    code, out, err = cli(*EXTRACT, "--dataset", tiny_tiles, "--tile-px", "32", "--max-tiles", "3")
    assert code == 2 and out == ""
    assert_one_line_error(err, "--tile-px --max-tiles", "slides data sets only", "tile-folder")
    code, _, err = cli(*EXTRACT, "--dataset", tiny_tiles, "--dtype", "float16")
    assert code == 2
    assert_one_line_error(err, "--dtype", "--out")
    code, _, err = cli(*EXTRACT, "--dataset", tiny_tiles, "--out", tmp_path)
    assert code == 2
    assert_one_line_error(err, f"--out {tmp_path}", "folder")
    code, _, err = cli(*EXTRACT, "--dataset", "demo")
    assert code != 0
    assert_one_line_error(err, "without a task", "data set name")
    assert not list(tmp_path.rglob("*.h5"))


def test_slide_flags_come_from_the_data_set_plugin(cli) -> None:
    from histobench.plugins.manager import get_plugins

    groups = {g.dataset: g for g in get_plugins().flags_for("extract")}
    assert "slides" in groups
    code, out, _ = cli("extract", "--help")
    assert code == 0 and "slides data sets:" in out and "--target-mpp" in out
