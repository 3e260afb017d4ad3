"""End to end through ``bench run`` on precomputed per-patient HDF5 features (no extractor)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import assert_one_line_error
from tests.datasets.luad.helpers import planted_cohort


def _config(tmp_path: Path, task_options: str) -> Path:
    # Single-process fits keep the tests light on the shared 2-core machine.
    path = tmp_path / "run.toml"
    path.write_text(f"[task_options]\nn_jobs = 1\n{task_options}\n")
    return path


def test_luad_mutation_cli_planted_vs_null(tmp_path: Path, cli, luad_plugins) -> None:  # type: ignore[no-untyped-def]
    info = planted_cohort(tmp_path, n_patients=60, dim=10, seed=1)
    config = _config(tmp_path, "inner_folds = 5")
    code, out, err = cli(
        "run", "--task", "luad-mutation", "--dataset", info["toml"], "--config", config,
        "--repeats", "3", "--folds", "3", "--json",
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    assert record["extractor"] == "mymodel"  # labelled by the features folder
    assert record["metric"] == "auc" and record["n_units"] == 60
    assert len(record["scores"]) == 3 and len(record["fold_scores"]) == 3
    genes = record["per_target"]
    assert set(genes) == {"PLANT", "NULLM"}
    assert genes["PLANT"]["mean"] > 0.8 and genes["PLANT"]["extra"]["significant"]
    assert 0.3 < genes["NULLM"]["mean"] < 0.65
    details = record["details"]
    assert details["alignment"]["patients_used"] == 60
    assert details["labels"]["format"] == "maf"
    assert details["significance"]["rule"] == "majority"
    assert record["config"]["resolved"]["task_options"]["lambda_rule"] == "min"


def test_luad_expression_cli_planted_vs_null(tmp_path: Path, cli, luad_plugins) -> None:  # type: ignore[no-untyped-def]
    info = planted_cohort(tmp_path, n_patients=60, dim=10, seed=2, slides_per_patient=2)
    code, out, err = cli(
        "run", "--task", "luad-expression", "--dataset", info["toml"],
        "--config", _config(tmp_path, ""), "--repeats", "3", "--folds", "3", "--json",
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    assert record["metric"] == "pearson_r" and record["n_units"] == 60  # 120 slide files
    genes = record["per_target"]
    assert set(genes) == {"GENEA", "GENEZ"}  # mutation genes of the list: not in expression
    assert genes["GENEA"]["mean"] > 0.6 and genes["GENEA"]["extra"]["significant"]
    assert abs(genes["GENEZ"]["mean"]) < 0.35
    skipped = record["details"]["genes_skipped"]
    assert skipped["PLANT"].startswith("not in the expression labels")


def test_barcodes_that_match_nothing_one_line_error(tmp_path: Path, cli, luad_plugins) -> None:  # type: ignore[no-untyped-def]
    info = planted_cohort(tmp_path, n_patients=8, dim=3)
    expression = tmp_path / "expression.tsv"
    text = expression.read_text().replace("TCGA-T0-", "TCGA-ZZ-")
    expression.write_text(text)
    code, out, err = cli(
        "run", "--task", "luad-expression", "--dataset", info["toml"], "--repeats", "2",
        "--folds", "2",
    )  # fmt: skip
    assert code != 0 and out == ""
    assert_one_line_error(err, "no patient has both features and expression labels")


def test_negative_expression_one_line_error(tmp_path: Path, cli, luad_plugins) -> None:  # type: ignore[no-untyped-def]
    info = planted_cohort(tmp_path, n_patients=8, dim=3)
    expression = tmp_path / "expression.tsv"
    lines = expression.read_text().splitlines()
    cells = lines[1].split("\t")
    cells[3] = "-4"
    lines[1] = "\t".join(cells)
    expression.write_text("\n".join(lines) + "\n")
    code, _, err = cli("run", "--task", "luad-expression", "--dataset", info["toml"])
    assert code != 0
    assert_one_line_error(err, "expression.tsv", "gene 'GENEA'", "negative expression value -4")


def test_maf_missing_column_one_line_error(tmp_path: Path, cli, luad_plugins) -> None:  # type: ignore[no-untyped-def]
    info = planted_cohort(tmp_path, n_patients=8, dim=3)
    maf = tmp_path / "mutations.maf"
    maf.write_text(maf.read_text().replace("Tumor_Sample_Barcode", "Sample"))
    code, _, err = cli("run", "--task", "luad-mutation", "--dataset", info["toml"])
    assert code != 0
    assert_one_line_error(err, "mutations.maf", "missing required column(s) Tumor_Sample_Barcode")


def test_missing_labels_fail_before_any_extraction(cli, tmp_path) -> None:
    """A slide folder has no mutation labels: the error comes before slides are embedded."""
    import os
    from pathlib import Path

    from tests.conftest import assert_one_line_error

    slides = tmp_path / "slides"
    slides.mkdir()
    (slides / "TCGA-AA-0001-01Z-00-DX1.svs").write_bytes(b"not a slide")
    code, _, err = cli(
        "run", "--extractor", "effnet-lite0", "--task", "luad-mutation", "--dataset", slides
    )
    assert code == 1
    assert_one_line_error(err, "luad-mutation needs mutations labels")
    features = Path(os.environ["HISTOBENCH_HOME"]) / "features" / "slides"
    assert not features.exists() or not any(features.rglob("*.h5"))


def test_run_on_precomputed_features_imports_no_deep_learning_framework(tmp_path: Path) -> None:
    """No model runs on precomputed features: ``bench run`` must not pay for importing torch
    (seconds of each LUAD run), neither for the tile pipeline nor to look for a GPU."""
    info = planted_cohort(tmp_path, n_patients=40, dim=6, seed=3)
    config = _config(tmp_path, "inner_folds = 3")
    code = (
        "import json, sys\n"
        "from histobench.cli.main import main\n"
        f"status = main(['run', '--task', 'luad-mutation', '--dataset', {str(info['toml'])!r},"
        f" '--config', {str(config)!r}, '--repeats', '2', '--folds', '3', '--json'])\n"
        "heavy = [m for m in ('torch', 'timm', 'torchvision', 'tensorflow') if m in sys.modules]\n"
        "print(json.dumps({'status': status, 'heavy': heavy}))\n"
    )
    env = {**os.environ, "HISTOBENCH_HOME": str(tmp_path / "home"), "HISTOBENCH_QUIET": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"status": 0, "heavy": []}
