"""Bad input: one-line errors naming the file or field, never a traceback; bad tiles skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from histobench.cli.main import main as bench_main
from histobench.extractors.ftx.spec import FTX_SPEC, FTXOptions
from histobench.extractors.ftx.train import finetune
from histobench.plugins.errors import ConfigError, DataError, WeightsError
from histobench.plugins.specs import Runtime

from .helpers import fast_recipe, run_options


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    capsys.readouterr()
    code = bench_main(["finetune", *[str(a) for a in args]])
    err = capsys.readouterr().err
    return code, err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


FAST = ["--backbone", "effnet-lite0", "--input-size", "64", "--batch-size", "8",
        "--step1-epochs", "1", "--step2-epochs", "0", "--device", "cpu", "--num-workers", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def finished(train_tiles: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    finetune(fast_recipe(step1_epochs=1, step2_epochs=0), run_options(train_tiles, out))
    return out


def test_single_class_folder(capsys, tmp_path: Path, train_tiles: Path) -> None:
    data = tmp_path / "one"
    shutil.copytree(train_tiles / "ADI", data / "ADI")
    code, err = _cli(capsys, "--data", data, "--out", tmp_path / "o", *FAST)
    assert code == DataError.exit_code
    assert "only one class" in _one_line(err) and str(data) in err


def test_classes_must_match_the_given_list(capsys, tiles_copy: Path, tmp_path: Path) -> None:
    shutil.rmtree(tiles_copy / "TUM")
    code, err = _cli(
        capsys, "--data", tiles_copy, "--out", tmp_path / "o", *FAST,
        "--classes", "ADI,BACK,DEB,LYM,MUC,MUS,NORM,STR,TUM",
    )  # fmt: skip
    line = _one_line(err)
    assert code == ConfigError.exit_code and "missing: TUM" in line


def test_unreadable_tiles_are_skipped_and_recorded(tiles_copy: Path, tmp_path: Path) -> None:
    (tiles_copy / "ADI" / "ADI-TRUNCATED.tif").write_bytes(
        (tiles_copy / "ADI" / "ADI-TRAIN0000.tif").read_bytes()[:500]
    )
    (tiles_copy / "MUS" / "MUS-NOTANIMAGE.png").write_text("hello")
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(tiles_copy / "STR" / "STR-GREY.png")
    (tiles_copy / "STR" / "notes.txt").write_text("not a tile")
    out = tmp_path / "o"
    result = finetune(fast_recipe(step1_epochs=1, step2_epochs=0), run_options(tiles_copy, out))
    skipped = {s["item"]: s["reason"] for s in result.card["data"]["skipped"]}
    assert set(skipped) == {
        "ADI/ADI-TRUNCATED.tif", "MUS/MUS-NOTANIMAGE.png", "STR/STR-GREY.png", "STR/notes.txt"
    }  # fmt: skip
    assert "greyscale" in skipped["STR/STR-GREY.png"]
    assert result.card["data"]["n_tiles"] == 36  # only the good ones train


def test_a_class_of_only_bad_tiles_is_an_error(tiles_copy: Path, tmp_path: Path) -> None:
    for f in (tiles_copy / "LYM").iterdir():
        f.write_bytes(b"broken")
    with pytest.raises(DataError, match="class 'LYM' has no readable tiles"):
        finetune(fast_recipe(), run_options(tiles_copy, tmp_path / "o"))


def test_out_with_a_different_run_is_refused_unless_overwrite(
    capsys, finished: Path, train_tiles: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    shutil.copytree(finished, out)
    before = (out / "weights.safetensors").read_bytes()
    code, err = _cli(capsys, "--data", train_tiles, "--out", out, *FAST, "--lr1", "1e-3")
    line = _one_line(err)
    assert code == ConfigError.exit_code
    assert "different fine-tuning run" in line and "recipe.lr1" in line and "--overwrite" in line
    assert (out / "weights.safetensors").read_bytes() == before  # nothing damaged
    code, err = _cli(capsys, "--data", train_tiles, "--out", out, *FAST, "--lr1", "1e-3",
                     "--overwrite")  # fmt: skip
    assert code == 0, err
    assert (out / "weights.safetensors").read_bytes() != before
    card = json.loads((out / "model_card.json").read_text())
    assert card["recipe"]["lr1"] == 1e-3


def test_out_with_different_data_is_refused(finished: Path, tiles_copy: Path, tmp_path: Path):
    out = tmp_path / "o"
    shutil.copytree(finished, out)
    victim = next((tiles_copy / "DEB").iterdir())
    Image.new("RGB", (224, 224), (200, 10, 10)).save(victim, format="TIFF")
    with pytest.raises(ConfigError, match="data differ"):
        finetune(fast_recipe(step1_epochs=1, step2_epochs=0), run_options(tiles_copy, out))


def test_corrupt_checkpoint_is_a_one_line_error(capsys, tmp_path: Path, train_tiles: Path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "checkpoint.json").write_text("{not json")
    code, err = _cli(capsys, "--data", train_tiles, "--out", out, *FAST)
    assert code == ConfigError.exit_code and "checkpoint.json" in _one_line(err)


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [("--lr1", "-1", "lr1"), ("--val-fraction", "1.5", "val_fraction"),
     ("--backbone", "timm:no-such-model", "no-such-model"),
     ("--backbone", "xception", "--weights")],
)  # fmt: skip
def test_bad_options(capsys, tmp_path: Path, train_tiles: Path, flag, value, field) -> None:
    args = [a for a in FAST if a not in ("--backbone", "effnet-lite0")]
    code, err = _cli(capsys, "--data", train_tiles, "--out", tmp_path / "o", *args, flag, value)
    assert code != 0 and field in _one_line(err)


def test_validation_split_needs_two_tiles_per_class(tmp_path: Path, train_tiles: Path) -> None:
    data = tmp_path / "d"
    for c in ("ADI", "BACK"):
        (data / c).mkdir(parents=True)
        shutil.copy(next((train_tiles / c).iterdir()), data / c)
    with pytest.raises(ConfigError, match="--val-fraction 0"):
        finetune(fast_recipe(), run_options(data, tmp_path / "o"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu(tmp_path: Path, train_tiles: Path) -> None:
    with pytest.raises(ConfigError, match="no CUDA device"):
        finetune(fast_recipe(), run_options(train_tiles, tmp_path / "o", device="cuda"))


# -- the ftx extractor's weights folder ------------------------------------------------------


def _ftx(**options: object):
    return FTX_SPEC.factory(FTXOptions(**options), Runtime())


def test_ftx_weights_missing(tmp_path: Path, session_home: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        _ftx(weights=tmp_path / "nowhere")
    with pytest.raises(WeightsError, match=str(session_home / "weights" / "ftx")):
        _ftx()  # default name: HISTOBENCH_HOME/weights/ftx/


def test_ftx_weights_by_name_under_home(finished: Path, session_home: Path) -> None:
    target = session_home / "weights" / "my-ftx"
    shutil.copytree(finished, target, dirs_exist_ok=True)
    assert _ftx(name="my-ftx").feature_dim == 2048


@pytest.mark.parametrize("damage", ["truncate", "flip", "card", "no-card", "wrong-format"])
def test_ftx_weights_corrupt(finished: Path, tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "w"
    shutil.copytree(finished, folder)
    weights, card = folder / "weights.safetensors", folder / "model_card.json"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-10] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "card":
        card.write_text("{broken")
    elif damage == "no-card":
        card.unlink()
    else:
        card.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(WeightsError) as info:
        _ftx(weights=folder)
    assert "\n" not in str(info.value) and str(folder) in str(info.value)


def test_ftx_weights_with_other_classes(finished: Path) -> None:
    with pytest.raises(WeightsError, match="trained on classes"):
        _ftx(weights=finished, classes=["ADI", "TUM"])
    assert _ftx(weights=finished / "weights.safetensors").feature_dim == 2048  # file → folder


def test_out_in_use_by_another_process(tmp_path: Path, train_tiles: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "o"
    out.mkdir()
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running fine-tune holds
        with pytest.raises(ConfigError, match="in use by another"):
            finetune(fast_recipe(), run_options(train_tiles, out))


def test_out_that_is_a_file(tmp_path: Path, train_tiles: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        finetune(fast_recipe(), run_options(train_tiles, tmp_path / "f"))
