"""Weights, caches and names: nothing is unpickled, nothing is written outside its folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from histobench.extractors.weights import load_state_dict
from histobench.plugins.errors import WeightsError
from tests.conftest import assert_one_line_error, write_textured_tiles

SRC = Path(__file__).resolve().parents[2] / "src" / "histobench"


class _Payload:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _evil_weights(path: Path, marker: Path) -> Path:
    torch.save({"conv.weight": torch.zeros(1), "x": _Payload(marker)}, path)
    return path


def test_a_pickled_object_in_a_weights_file_is_refused_unexecuted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for name in ("evil.bin", "evil.pth", "evil.ckpt"):
        path = _evil_weights(tmp_path / name, marker)
        with pytest.raises(WeightsError) as caught:
            load_state_dict(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert not marker.exists()


def test_bench_run_refuses_pickled_weights_in_one_line(cli, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    weights = _evil_weights(tmp_path / "xception.bin", marker)
    tiles = write_textured_tiles(tmp_path / "tiles", {"A": 3, "B": 3}, size=32)
    code, _, err = cli(
        "run", "--extractor", "imgnet", "--weights", weights, "--task", "crc-tissue",
        "--dataset", tiles, "--folds", "2", "--repeats", "1",
    )  # fmt: skip
    assert code != 0
    assert_one_line_error(err, str(weights), "cannot read weights")
    assert not marker.exists()


# What may read bytes back into objects, and the argument that makes each call safe.
_SAFE_CALLS = {
    r"torch\.load\(": r"weights_only\s*=\s*True",
    r"np\.load\(": r"allow_pickle\s*=\s*False",
    r"keras\.models\.load_model\(": r"safe_mode\s*=",
}
_NEVER = re.compile(r"^\s*(import pickle|from pickle|import dill|import cloudpickle)|joblib\.load\(|"
                    r"pickle\.loads?\(|pd\.read_pickle\(", re.M)  # fmt: skip


def _call_text(source: str, start: int) -> str:
    """The call's full argument text (balanced parentheses) from the match position."""
    depth, i = 0, source.index("(", start)
    for j in range(i, len(source)):
        depth += {"(": 1, ")": -1}.get(source[j], 0)
        if depth == 0:
            return source[i : j + 1]
    return source[i:]


def test_no_module_can_unpickle() -> None:
    audited = 0
    for module in sorted(SRC.rglob("*.py")):
        source = module.read_text(encoding="utf-8")
        found = _NEVER.search(source)
        assert found is None, f"{module}: {found.group(0) if found else ''}"
        for call, safe in _SAFE_CALLS.items():
            for match in re.finditer(call, source):
                audited += 1
                args = _call_text(source, match.start())
                assert re.search(safe, args), f"{module}: {match.group(0)}{args} lacks {safe}"
    assert audited >= 3  # the store's np.load, the weights' torch.load, Keras's load_model


@pytest.mark.slow
def test_slide_ids_cannot_steer_a_write_outside_out(cli, tmp_path: Path) -> None:
    from tests.datasets.wsi.conftest import write_pyramid

    slides = tmp_path / "deep" / "slides"
    slides.mkdir(parents=True)
    write_pyramid(slides / "a.tif", size=(512, 512))
    write_pyramid(slides / "b.tif", size=(512, 512))
    manifest = slides / "manifest.csv"
    manifest.write_text("path,slide_id\na.tif,../../escaped\nb.tif,/tmp/absolute\n")
    out = tmp_path / "deep" / "out"
    code, _, err = cli(
        "extract", "--extractor", "effnet-lite0", "--option", "input_size=32",
        "--dataset", manifest, "--tile-px", "32", "--target-mpp", "1.0", "--max-tiles", "4",
        "--executor", "inline", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.h5"))
    assert written and all(p.parts[:2] == ("deep", "out") for p in written), written
    assert not Path("/tmp/absolute.h5").exists()


def test_a_cohort_name_that_is_a_path_is_refused_in_one_line(cli, tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "m.tsv").write_text("patient\tTP53\nTCGA-AA-0001\t1\n")
    cohort = tmp_path / "c.toml"
    cohort.write_text('[cohort]\nname = "../../x"\nfeatures = "features"\nmutations = "m.tsv"\n')
    code, _, err = cli("run", "--task", "luad-mutation", "--dataset", cohort)
    assert code == 2
    assert_one_line_error(err, str(cohort), "cohort.name", "plain name")
