"""Finding weights without a download, strict refusal of wrong or unsafe files, and
``bench weights list|check`` reporting them in one line each."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from histobench.extractors.foundation.checkpoint import load_model, locate, read_state
from histobench.extractors.foundation.registry import RECIPES
from histobench.plugins.errors import WeightsError
from tests.conftest import assert_one_line_error
from tests.extractors.foundation.publisher import random_timm_state, reduced, write_snapshot

SMALL = RECIPES["kaiko-vits16"]


def _small_file(folder: Path, recipe=SMALL) -> Path:  # type: ignore[no-untyped-def]
    path, _ = write_snapshot(reduced(recipe), folder)
    return path / "model.safetensors" if path.is_dir() else path


def test_weights_are_found_in_home_toml_and_hf_cache(
    hb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert locate(SMALL).path is None
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    snap = cache / f"models--{SMALL.hf_repo.replace('/', '--')}" / "snapshots" / "abc123"
    _small_file(snap)
    assert locate(SMALL).path == snap / "model.safetensors"
    elsewhere = _small_file(tmp_path / "elsewhere")
    (hb_home / "weights.toml").write_text(f'kaiko-vits16 = "{elsewhere}"\n', encoding="utf-8")
    assert locate(SMALL).path == elsewhere  # the map wins over the cache
    home_copy = _small_file(hb_home / "weights" / "kaiko-vits16")
    assert locate(SMALL).path == home_copy  # HISTOBENCH_HOME/weights/<name>/ wins over both
    explicit = _small_file(tmp_path / "explicit")
    assert locate(SMALL, explicit.parent).path == explicit  # a snapshot folder given by hand


def test_wrong_model_is_refused_naming_keys_and_file(tmp_path: Path) -> None:
    wrong = _small_file(tmp_path / "kaiko")
    with pytest.raises(WeightsError) as err:
        load_model(RECIPES["uni"], wrong)
    message = str(err.value)
    assert str(wrong) in message and "not a 'uni' checkpoint" in message
    assert "missing keys" in message and "shape mismatches" in message
    assert "\n" not in message


def test_one_unexpected_key_is_an_error(tmp_path: Path) -> None:
    state = random_timm_state(reduced(SMALL))
    state["head.weight"] = torch.zeros(10, 384)
    path = tmp_path / "extra.safetensors"
    save_file(state, path)
    with pytest.raises(WeightsError, match=r"1 unexpected keys \(head.weight\)"):
        load_model(reduced(SMALL), path)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    good = _small_file(tmp_path / "good")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match="cut.safetensors: cannot read weights"):
        read_state(cut)
    cut_bin = tmp_path / "cut.bin"
    torch.save(random_timm_state(reduced(SMALL)), tmp_path / "full.bin")
    cut_bin.write_bytes((tmp_path / "full.bin").read_bytes()[:5000])
    with pytest.raises(WeightsError, match="cut.bin: cannot read weights"):
        read_state(cut_bin)


def test_pickled_objects_are_refused_by_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    torch.save({"weights": argparse.Namespace(payload="arbitrary object")}, path)
    with pytest.raises(WeightsError, match="pytorch_model.bin: cannot read weights"):
        read_state(path)


def test_weights_check_reports_each_problem_without_traceback(
    cli, hb_home: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = hb_home / "weights" / "uni"
    folder.mkdir(parents=True)
    (folder / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    wrong = _small_file(tmp_path / "kaiko")
    code, out, err = cli("weights", "check", "uni")
    assert code == 1 and "Traceback" not in out + err
    assert "uni: ERROR" in out and "pytorch_model.bin: cannot read weights" in out
    code, out, err = cli("weights", "check", "virchow2", "--weights", wrong, "--json")
    result = json.loads(out)[0]
    assert code == 1 and result["status"] == "error"
    assert (
        "not a 'virchow2' checkpoint" in result["problem"] and "missing keys" in result["problem"]
    )
    good = _small_file(tmp_path / "good", RECIPES["kaiko-vits16"])
    code, out, _ = cli("weights", "check", "kaiko-vits16", "--weights", good)
    # The full-depth recipe: a 2-block checkpoint lacks blocks 2..11, named.
    assert code == 1 and "missing keys (blocks.2." in out
    code, _, err = cli("weights", "check", "no-such-model")
    assert code == 2
    assert_one_line_error(err, "no-such-model")


def test_weights_check_ok_and_list(cli, hb_home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_snapshot(RECIPES["kaiko-vits16"], hb_home / "weights" / "kaiko-vits16")
    code, out, _ = cli("weights", "check", "--all")
    assert code == 0 and out.startswith("kaiko-vits16: OK")
    code, out, _ = cli("weights", "list", "--json")
    entries = {e["name"]: e for e in json.loads(out)}
    assert set(entries) == set(RECIPES)
    assert entries["kaiko-vits16"]["found"] and len(entries["kaiko-vits16"]["digest"]) == 16
    assert not entries["uni"]["found"] and entries["uni"]["feature_dim"] == 1024
    assert str(hb_home / "weights" / "uni") in entries["uni"]["searched"]


def test_bench_run_with_bad_weights_is_one_line(cli, tmp_path: Path, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00" * 64)
    code, _, err = cli(
        "run", "--extractor", "uni", "--weights", bad, "--task", "crc-tissue",
        "--dataset", shared_data / "crc-sample", "--repeats", "1", "--folds", "2",
    )  # fmt: skip
    assert code != 0
    assert_one_line_error(err, str(bad))
    code, _, err = cli(
        "run", "--extractor", "virchow2", "--task", "crc-tissue",
        "--dataset", shared_data / "crc-sample", "--repeats", "1", "--folds", "2",
    )  # fmt: skip
    assert code != 0
    assert_one_line_error(err, "no weights for 'virchow2'", "--weights")
