"""Slides → per-slide HDF5 features: executors agree, runs resume after a kill, bad slides
are recorded, and ``bench extract`` writes the documented layout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from histobench.benchmark.executors import DaskExecutor, LocalExecutor
from histobench.benchmark.h5io import read_slide_features
from histobench.datasets.wsi.embed import embed_slides
from histobench.plugins.specs import Item, Runtime
from tests.conftest import REPO, assert_one_line_error
from tests.datasets.wsi.conftest import tissue_image, write_pyramid
from tests.datasets.wsi.embed_helpers import SMALL_TILING, ColourMoments, slide_items

# Different sizes → different (cropped) tissue, so per-slide rows differ.
SIZES = ((1024, 768), (1280, 1024), (896, 768))


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("slides")
    return [write_pyramid(folder / f"s{i}.tif", size=size) for i, size in enumerate(SIZES)]


def _embed(paths: list[Path], out: Path, executor: object = "inline", **kw: object):
    extractor = ColourMoments()
    result = embed_slides(
        extractor,
        slide_items(paths),
        Runtime(batch_size=4),
        tiling=SMALL_TILING,
        executor=executor,
        out_dir=out,
        chunk_tiles=5,  # chunks that straddle model batches (4): batching must not matter
        **kw,  # type: ignore[arg-type]
    )
    return result, extractor


def _file_features(folder: Path) -> dict[str, np.ndarray]:
    return {p.stem: read_slide_features(p)[0] for p in sorted(folder.glob("*.h5"))}


def test_rows_are_tile_means_and_rerun_reads_files(slides: list[Path], tmp_path: Path) -> None:
    result, extractor = _embed(slides[:2], tmp_path / "out")
    assert result.ok == [0, 1] and result.computed == 2 and result.cached == 0
    assert result.tile_counts is not None and list(result.tile_counts) == [12, 12]
    assert extractor.tiles_embedded == 24
    # Per slide, batches of 4 from its first tile: 12 tiles → 3 full batches each.
    assert extractor.batch_sizes == [4] * 6
    stored = _file_features(tmp_path / "out")
    for row, slide in zip(result.features, ("s0", "s1"), strict=True):
        np.testing.assert_allclose(row, stored[slide].mean(axis=0), rtol=1e-6)
    assert not np.allclose(result.features[0], result.features[1])
    again, extractor2 = _embed(slides[:2], tmp_path / "out")
    assert again.cached == 2 and again.computed == 0 and extractor2.tiles_embedded == 0
    np.testing.assert_array_equal(again.features, result.features)
    # A different tiling is a different key: the files are recomputed, never reused.
    other = embed_slides(
        ColourMoments(),
        slide_items(slides[:1]),
        Runtime(batch_size=4),
        tiling={**SMALL_TILING, "max_tiles": 6},
        executor="inline",
        out_dir=tmp_path / "out",
    )
    assert other.computed == 1 and list(other.tile_counts) == [6]  # type: ignore[arg-type]


def test_dask_local_cluster_matches_local_processes(slides: list[Path], tmp_path: Path) -> None:
    # Local: one spawned worker process. Dask: a LocalCluster of 2 single-threaded workers
    # as threads of this process (processes=False: no interpreter start-up per worker).
    import torch

    threads = torch.get_num_threads()
    with LocalExecutor(workers=1) as pool:
        local, _ = _embed(slides[:2], tmp_path / "local", executor=pool)
    assert torch.get_num_threads() == threads  # the model's thread budget is restored
    with DaskExecutor.local(workers=2, processes=False) as pool:
        assert pool.workers == 2
        dask, _ = _embed(slides[:2], tmp_path / "dask", executor=pool)
    assert local.details["executor"] == "local" and dask.details["executor"] == "dask-local"
    assert local.ok == dask.ok == [0, 1]
    np.testing.assert_array_equal(local.features, dask.features)
    a, b = _file_features(tmp_path / "local"), _file_features(tmp_path / "dask")
    assert a.keys() == b.keys() == {"s0", "s1"}
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(
            read_slide_features(tmp_path / "local" / f"{key}.h5")[1],
            read_slide_features(tmp_path / "dask" / f"{key}.h5")[1],
        )


def _extract_args(folder: Path, out: Path) -> list[str]:
    return [
        "extract", "--extractor", "effnet-lite0", "--option", "input_size=32",
        "--dataset", str(folder), "--tile-px", "32", "--target-mpp", "1.0", "--max-tiles", "24",
        "--executor", "inline", "--batch-size", "4", "--dtype", "float16", "--out", str(out),
        "--json",
    ]  # fmt: skip


BENCH = [sys.executable, "-m", "histobench.cli.main"]


def _kill_after_first_file(args: list[str], out: Path) -> int:
    """Start ``bench extract``; SIGKILL its process group once the first .h5 appears.

    Returns the killed pid; fails if the run finished before it could be killed.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill takes any children too
    )  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while not list(out.glob("*.h5")):
            if proc.poll() is not None:
                stderr = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"bench extract ended before writing a file: {stderr}")
            if time.monotonic() > deadline:
                pytest.fail("bench extract wrote no file within 120 s")
            time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "bench extract finished before the kill"
    return proc.pid


def test_killed_run_resumes_without_recomputing(tmp_path: Path) -> None:
    # A small first slide, then larger ones: the kill lands while a later one is running.
    folder = tmp_path / "slides"
    folder.mkdir()
    for name, size in (("a", (1024, 768)), ("b", (1536, 1024)), ("c", (1536, 1024))):
        write_pyramid(folder / f"{name}.tif", size=size)
    out = tmp_path / "out"
    args = BENCH + _extract_args(folder, out)
    killed_pid = _kill_after_first_file(args, out)
    done = sorted(p.name for p in out.glob("*.h5"))
    assert done and len(done) < 3, done  # killed between slides, after the first
    mtimes = {name: (out / name).stat().st_mtime_ns for name in done}
    # What a kill during a write leaves (the temp names carry the writer's pid): the dead
    # writer's file goes on the rerun; a live writer's (this process's) stays.
    stale = out / f".c.h5.{killed_pid}.k1ll3d.tmp"
    stale.write_bytes(b"half an HDF5 file")
    live = out / f".c.h5.{os.getpid()}.l1ve00.tmp"
    live.write_bytes(b"being written")

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    resumed = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert (summary["computed"], summary["cached"]) == (3 - len(done), len(done))
    for name, mtime in mtimes.items():
        assert (out / name).stat().st_mtime_ns == mtime  # finished slides not rewritten
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        live.name, "a.h5", "b.h5", "c.h5",
    ]  # fmt: skip

    # Equal to an uninterrupted run with the same settings, in a fresh process like the
    # others: in the test process, state left by earlier tests (torch's thread count, say)
    # can change the float32 sums behind the float16 features (CI once saw 16 of 29,440
    # values one float16 step apart when this run was in-process).
    straight = tmp_path / "straight"
    plain = subprocess.run(
        BENCH + _extract_args(folder, straight),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    resumed_files, straight_files = _file_features(out), _file_features(straight)
    assert resumed_files.keys() == straight_files.keys() == {"a", "b", "c"}
    for key in resumed_files:
        assert resumed_files[key].dtype == np.float16 and len(resumed_files[key]) > 4
        np.testing.assert_array_equal(resumed_files[key], straight_files[key])
        np.testing.assert_array_equal(
            read_slide_features(out / f"{key}.h5")[1],
            read_slide_features(straight / f"{key}.h5")[1],
        )


def test_two_cpu_model_processes_match_one_device(slides: list[Path], tmp_path: Path) -> None:
    # Two "cpu" devices: one model process each, batches dealt to the less busy one; the
    # features and files must equal the in-process single-device run.
    one, extractor = _embed(slides, tmp_path / "one")
    two, parent = _embed(slides, tmp_path / "two", devices=["cpu", "cpu"])
    assert one.details["devices"] == ["cpu"] and two.details["devices"] == ["cpu", "cpu"]
    assert parent.tiles_embedded == 0  # the model ran in the device processes only
    assert two.details["tiles_computed"] == extractor.tiles_embedded == 36
    assert two.ok == one.ok == [0, 1, 2]
    np.testing.assert_array_equal(two.features, one.features)
    a, b = _file_features(tmp_path / "one"), _file_features(tmp_path / "two")
    assert a.keys() == b.keys() == {"s0", "s1", "s2"}
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def _blank_slide(path: Path) -> Path:
    """Glass only: a tiled TIFF with a resolution but no tissue."""
    rng = np.random.default_rng(1)
    image = np.clip(rng.normal((242, 240, 244), 2, (768, 1024, 3)), 0, 255).astype(np.uint8)
    tifffile.imwrite(
        path, image, tile=(256, 256), photometric="rgb", compression="zlib",
        resolution=(1e4 / 0.25, 1e4 / 0.25), resolutionunit="CENTIMETER",
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def bad_slides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    corrupt = folder / "corrupt.svs"
    corrupt.write_bytes(b"II*\x00" + b"\x17" * 5000)  # a TIFF signature, then garbage
    full = write_pyramid(folder / "full.tif", size=(1024, 768)).read_bytes()
    truncated = folder / "truncated.tif"
    truncated.write_bytes(full[: len(full) // 2])
    (folder / "full.tif").unlink()
    no_mpp = write_pyramid(folder / "nompp.tif", mpp=None, levels=2, size=(1024, 768))
    return {
        "corrupt": corrupt,
        "truncated": truncated,
        "blank": _blank_slide(folder / "blank.tif"),
        "nompp": no_mpp,
    }


def test_bad_slides_are_recorded_and_the_rest_go_on(
    slides: list[Path], bad_slides: dict[str, Path], tmp_path: Path
) -> None:
    paths = [bad_slides["corrupt"], slides[0], bad_slides["truncated"], bad_slides["blank"]]
    paths.append(bad_slides["nompp"])
    result, _ = _embed(paths, tmp_path / "out")
    assert result.ok == [1] and result.computed == 1
    reasons = {s.item_id: s.reason for s in result.skipped}
    assert set(reasons) == {"corrupt", "truncated", "blank", "nompp"}
    assert "not a slide format OpenSlide can read" in reasons["corrupt"]
    assert "corrupt, truncated" in reasons["truncated"]
    assert "no tissue tiles" in reasons["blank"]
    assert "no resolution" in reasons["nompp"] and "--mpp" in reasons["nompp"]
    statuses = {s["slide_id"]: s["status"] for s in result.details["per_slide"]}
    assert statuses == {"corrupt": "failed", "s0": "computed", "truncated": "failed",
                        "blank": "failed", "nompp": "failed"}  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "out").glob("*.h5")) == ["s0.h5"]
    # A per-slide mpp (manifest column) rescues the slide without a recorded resolution.
    item = Item("nompp", bad_slides["nompp"], fingerprint="n", meta={"mpp": 0.25})
    rescued = embed_slides(
        ColourMoments(), [item], Runtime(batch_size=4), tiling=SMALL_TILING,
        executor="inline", out_dir=tmp_path / "out",
    )  # fmt: skip
    assert rescued.ok == [0] and rescued.skipped == []
    _, _, attrs = read_slide_features(tmp_path / "out" / "nompp.h5")
    assert attrs["mpp"] == 0.25 and attrs["mpp_source"] == "override"


def test_cli_only_bad_slides_fails_with_one_line(cli, bad_slides: dict[str, Path]) -> None:
    folder = bad_slides["blank"].parent
    code, out, err = cli(
        "extract", "--extractor", "effnet-lite0", "--dataset", folder,
        "--option", "input_size=32", "--executor", "inline",
    )  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "no slide could be processed (4 failed")
    assert out == ""


def test_cli_manifest_and_mpp_flag(cli, bad_slides: dict[str, Path], tmp_path: Path) -> None:
    manifest = tmp_path / "slides.csv"
    manifest.write_text(f"path,patient\n{bad_slides['nompp']},P1\n{bad_slides['corrupt']},P2\n")
    code, out, err = cli(
        "extract", "--extractor", "effnet-lite0", "--dataset", manifest,
        "--option", "input_size=32", "--executor", "inline", "--mpp", "0.5",
        "--target-mpp", "1.0", "--tile-px", "32", "--max-tiles", "3", "--no-normalise",
        "--out", tmp_path / "out", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["embedded"] == 1 and summary["computed"] == 1
    assert [s["item_id"] for s in summary["skipped"]] == ["corrupt"]
    assert summary["h5"] == [str(tmp_path / "out" / "nompp.h5")]
    features, coords, attrs = read_slide_features(summary["h5"][0])
    assert features.shape == (3, 1280) and attrs["mpp"] == 0.5 and attrs["patient"] == "P1"
    assert json.loads(attrs["normalisation"]) == {"enabled": False}
    # 1.0 µm/px tiles of 32 px on a 0.5 µm/px slide: 64 level-0 px, read from level 1.
    assert attrs["tile_size_level0"] == 64 and attrs["read_level"] == 1
    assert np.all(coords % 64 == 0)


def test_cli_real_slide_hdf5_layout(cli, cmu_slide: Path, tmp_path: Path) -> None:
    out = tmp_path / "features"
    code, stdout, err = cli(
        "extract", "--extractor", "effnet-lite0", "--dataset", cmu_slide.parent,
        "--option", "input_size=64", "--max-tiles", "8", "--executor", "inline",
        "--out", out, "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["embedded"] == 1 and summary["skipped"] == []
    path = out / "CMU-1-Small-Region.h5"
    assert summary["h5"] == [str(path)] and summary["h5_dir"] == str(out)
    with h5py.File(path, "r") as h5:
        assert set(h5.keys()) == {"features", "coords"}
        assert h5["features"].shape == (8, 1280) and h5["features"].dtype == np.float32
        assert h5["coords"].shape == (8, 2) and h5["coords"].dtype == np.int64
        attrs = dict(h5.attrs)
        coords = h5["coords"][()]
    assert attrs["extractor"] == "effnet-lite0" and attrs["tile_px"] == 224
    assert attrs["target_mpp"] == 0.25 and abs(attrs["mpp"] - 0.499) < 1e-6
    assert attrs["weights_digest"] and len(attrs["extractor_identity_digest"]) == 24
    assert json.loads(attrs["normalisation"])["method"] == "macenko"
    assert json.loads(attrs["mask"])["min_saturation"] == 0.05
    assert attrs["code_version"].startswith("0.")
    # 224 px at 0.25 µm/px on a 0.499 µm/px slide: tiles of ~112 level-0 px on a grid.
    step = attrs["tile_size_level0"]
    assert abs(step - 224 * 0.25 / 0.499) < 1e-6
    np.testing.assert_allclose(coords / step, np.rint(coords / step), atol=0.01)
    assert (out / "previews" / "CMU-1-Small-Region.svs.tiles.png").is_file()
    # Rerun: nothing recomputed.
    code, stdout, _ = cli(
        "extract", "--extractor", "effnet-lite0", "--dataset", cmu_slide.parent,
        "--option", "input_size=64", "--max-tiles", "8", "--executor", "inline",
        "--out", out, "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(stdout)["cached"] == 1


def test_slides_dataset_detection(slides: list[Path], tmp_path: Path) -> None:
    from histobench.datasets.wsi.dataset import looks_like_slides, slide_items

    assert looks_like_slides(slides[0].parent)
    tiles = tmp_path / "tiles" / "TUM"
    tiles.mkdir(parents=True)
    tifffile.imwrite(tiles / "t.tif", tissue_image(64, 64))
    assert not looks_like_slides(tmp_path / "tiles")  # class folders of tiles
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,mpp\n{slides[0]},0.3\n")
    assert looks_like_slides(manifest)
    (tmp_path / "other.csv").write_text("slide,label\na,1\n")
    assert not looks_like_slides(tmp_path / "other.csv")
    items = slide_items(manifest)
    assert items[0].meta == {"mpp": 0.3} and len(items[0].fingerprint) == 24


def test_default_folder_and_per_item_tiling(slides: list[Path], hb_home: Path) -> None:
    from histobench.datasets.wsi.embed import slide_features_dir
    from histobench.datasets.wsi.tiling import TilingConfig

    extractor = ColourMoments()
    # A cohort passes its own tiling per item; it overrides fields of the base tiling.
    item = Item("s0", slides[0], fingerprint="fp", meta={"tiling": {"max_tiles": 5}})
    result = embed_slides(extractor, [item], Runtime(batch_size=4), tiling=SMALL_TILING,
                          executor="inline")  # fmt: skip
    assert list(result.tile_counts) == [5]  # type: ignore[arg-type]
    expected = slide_features_dir(extractor, TilingConfig(**{**SMALL_TILING, "max_tiles": 5}))
    assert result.details["h5_dir"] == str(expected)
    assert expected.parent == hb_home / "features" / "slides"
    assert expected.name.startswith(extractor.cache_key()[:12])
    assert (expected / "s0.h5").is_file()


@pytest.mark.slow
def test_dask_local_worker_processes_match_inline(slides: list[Path], tmp_path: Path) -> None:
    # Worker *processes*: tasks and tiles are pickled across, as on a real cluster (~10 s,
    # mostly each worker importing torch).
    with DaskExecutor.local(workers=2, processes=True) as pool:
        dask, _ = _embed(slides[:1], tmp_path / "dask", executor=pool)
    inline, _ = _embed(slides[:1], tmp_path / "inline")
    np.testing.assert_array_equal(dask.features, inline.features)
    np.testing.assert_array_equal(
        _file_features(tmp_path / "dask")["s0"], _file_features(tmp_path / "inline")["s0"]
    )


def test_cli_unknown_device_is_one_line_error(cli, slides: list[Path], tmp_path: Path) -> None:
    code, out, err = cli(
        "extract", "--extractor", "effnet-lite0", "--dataset", slides[0].parent,
        "--option", "input_size=32", "--executor", "inline", "--devices", "cpu,tpu:0",
        "--out", tmp_path / "out",
    )  # fmt: skip
    assert code != 0 and out == ""
    assert_one_line_error(err, "--devices", "tpu:0")
    assert not list((tmp_path / "out").glob("*.h5"))


def test_cpu_default_with_local_readers_is_two_model_processes(
    slides: list[Path], tmp_path: Path
) -> None:
    from histobench.benchmark.devices import usable_cores

    if usable_cores() < 2:
        pytest.skip("needs 2 usable cores: one model process per core is the CPU default")
    inline, _ = _embed(slides, tmp_path / "inline")
    auto, parent = _embed(slides, tmp_path / "auto", executor="local", workers=1)
    assert auto.details["devices"] == ["cpu", "cpu"]
    assert parent.tiles_embedded == 0  # the model ran in the two model processes
    np.testing.assert_array_equal(auto.features, inline.features)
    pinned, parent = _embed(slides, tmp_path / "pinned", executor="local", workers=1, devices="cpu")
    assert pinned.details["devices"] == ["cpu"] and parent.tiles_embedded == 36
    np.testing.assert_array_equal(pinned.features, inline.features)
