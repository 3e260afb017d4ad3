"""Evaluation identities made by ``bench run`` itself: what they record, and that ``bench
compare`` pairs exactly the runs that only differ in their features.

A bring-your-own-features cohort (per-patient HDF5 files, a MAF and an expression table) with
two feature folders over the same patients and labels stands for two extractors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from histobench.benchmark.h5io import write_slide_features
from histobench.benchmark.identity import first_difference
from histobench.benchmark.store import ResultsStore
from tests.conftest import assert_one_line_error
from tests.datasets.luad.helpers import planted_cohort
from tests.leaderboard.conftest import run_bench_json

PLAN = ("--repeats", "2", "--folds", "3")


def _cohort_toml(root: Path, features: str, expression: str = "expression.tsv") -> Path:
    toml = root / f"{features}-{Path(expression).stem}.toml"
    toml.write_text(
        "[cohort]\n"
        f'name = "planted"\nfeatures = "features/{features}"\nextractor = "{features}"\n'
        f'mutations = "mutations.maf"\nexpression = "{expression}"\n'
        'genes = ["GENEA", "GENEZ"]\n'
    )
    return toml


@pytest.fixture
def two_feature_folders(tmp_path: Path) -> Path:
    """The planted cohort plus a second extractor's features for the same patients."""
    info = planted_cohort(tmp_path, n_patients=30, dim=6)
    rng = np.random.default_rng(9)
    for pid in info["patients"]:  # type: ignore[union-attr]
        rows = rng.normal(size=(5, 6))
        write_slide_features(tmp_path / "features" / "other" / f"{pid}.h5", rows, np.zeros((5, 2)))
    return tmp_path


def _run(home: Path, toml: Path, *extra: str) -> dict:
    return run_bench_json(home, "--task", "luad-expression", "--dataset", str(toml), *PLAN, *extra)


def test_cohort_runs_pair_on_identity_not_on_feature_files(
    bench, hb_home: Path, two_feature_folders: Path, tmp_path: Path
) -> None:
    root = two_feature_folders
    a = _run(hb_home, _cohort_toml(root, "mymodel"))
    b = _run(hb_home, _cohort_toml(root, "other"))
    # The record says what decides the scores, readably; the features are not part of it.
    ev = a["evaluation"]
    assert list(ev)[:4] == ["task", "options", "estimator", "metric"]
    assert ev["task"] == "luad-expression" and ev["options"]["epsilon"] == 0.1  # defaults too
    assert "n_jobs" not in ev["options"]
    assert ev["labels"]["targets"] == ["GENEA", "GENEZ"]
    assert ev["inputs"]["items"].startswith("precomputed features")
    assert ev["plan"]["plan_id"] == a["plan_id"] and ev["code"]["digest"]
    with ResultsStore(hb_home / "results.sqlite") as store:
        stored = store.get_run(a["run_id"])
        assert stored.evaluation == ev and stored.evaluation_id == a["evaluation_id"]
        assert stored.dataset_fingerprint != store.get_run(b["run_id"]).dataset_fingerprint
    assert a["evaluation_id"] == b["evaluation_id"]
    code, out, err = bench("compare", "--task", "luad-expression", "--extractors",
                           "mymodel,other", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["run_ids"] == [a["run_id"], b["run_id"]]

    # Other expression values for the same patients and genes: refused, naming the labels.
    text = (root / "expression.tsv").read_text().splitlines()
    head, genea, genez = text[0], text[1], text[2]
    values = [f"{float(v) * 1.5 + 1:.6f}" for v in genea.split("\t")[1:]]
    (root / "expression2.tsv").write_text("\n".join([head, "GENEA\t" + "\t".join(values), genez]))
    c = _run(hb_home, _cohort_toml(root, "other", "expression2.tsv"))
    assert first_difference(a["evaluation"], c["evaluation"]).startswith("labels.values")
    code, _, err = bench("compare", "--task", "luad-expression", "--extractors", "mymodel,other")
    assert code != 0
    assert_one_line_error(err, a["run_id"], c["run_id"], "labels.values")

    # Same labels, another SVR epsilon: refused, naming the option.
    config = tmp_path / "eps.toml"
    config.write_text("[task_options]\nepsilon = 0.3\n")
    d = _run(hb_home, _cohort_toml(root, "other"), "--config", str(config))
    code, _, err = bench("compare", "--task", "luad-expression", "--extractors", "mymodel,other")
    assert code != 0
    assert_one_line_error(err, a["run_id"], d["run_id"], "options.epsilon", "0.1", "0.3")


def test_a_copied_genes_file_is_the_same_evaluation(
    hb_home: Path, two_feature_folders: Path, tmp_path: Path
) -> None:
    """File options count by content: the same genes file under another name pairs."""
    root = two_feature_folders
    first, second = tmp_path / "genes.txt", tmp_path / "copy" / "my-genes.txt"
    first.write_text("GENEA\nGENEZ\n")
    second.parent.mkdir()
    shutil.copy(first, second)
    runs = []
    for extractor, genes in (("mymodel", first), ("other", second)):
        config = tmp_path / f"{extractor}.toml"
        config.write_text(f'[task_options]\ngenes_file = "{genes}"\n')
        runs.append(_run(hb_home, _cohort_toml(root, extractor), "--config", str(config)))
    assert runs[0]["evaluation_id"] == runs[1]["evaluation_id"]
    assert runs[0]["evaluation"]["options"]["genes_file"].startswith("sha256:")
