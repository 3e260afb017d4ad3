"""The LUAD tasks on features given directly: planted signal, null calibration, skips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from histobench.benchmark.splits import make_plan
from histobench.datasets.labels import LabelMatrix, load_mutations
from histobench.plugins.errors import DataError
from histobench.plugins.labels import InMemoryLabels
from histobench.plugins.specs import Dataset, Item
from histobench.tasks.estimators.glmnet import lasso_cross_val_predict
from histobench.tasks.luad import (
    LuadExpressionOptions,
    LuadExpressionTask,
    LuadMutationOptions,
    LuadMutationTask,
    auc_with_p,
    masked_pearson,
    pearson_with_p,
    significant,
)


def _dataset(patients: list[str], kind: str, genes: list[str], values: np.ndarray) -> Dataset:
    items = [Item(f"{p}-slide", Path(f"{p}.h5"), patient=p) for p in patients]
    matrix = LabelMatrix(kind, Path(f"{kind}.tsv"), list(patients), genes, values)
    key = "mutation_matrix" if kind == "mutations" else "expression_matrix"
    return Dataset("t", "cohort", items, labels=InMemoryLabels(**{key: matrix}))


def _run(task, dataset: Dataset, X: np.ndarray, repeats: int = 3, folds: int = 3, seed: int = 0):  # type: ignore[no-untyped-def]
    units = task.units(dataset, dataset.items)
    plan = make_plan(units.ids, units.strata, units.groups, repeats, folds, seed)
    order = [
        dataset.items.index(next(i for i in dataset.items if i.patient == u)) for u in units.ids
    ]
    return units, task.evaluate(X[order], units, plan)


def test_metric_helpers_match_references() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    s = np.round(rng.normal(size=40) + y, 1)  # ties on purpose
    auc, p = auc_with_p(y, s, "greater")
    assert auc == pytest.approx(roc_auc_score(y, s))
    assert p == pytest.approx(
        stats.mannwhitneyu(s[y == 1], s[y == 0], alternative="greater").pvalue
    )
    v = rng.normal(size=30)
    preds = np.stack([v + rng.normal(size=30), rng.normal(size=30)])
    r, pv = pearson_with_p(v, preds, "two-sided")
    for i in range(2):
        ref = stats.pearsonr(v, preds[i])
        assert r[i] == pytest.approx(ref.statistic) and pv[i] == pytest.approx(ref.pvalue)
    # The vectorised, NaN-masked version equals scipy column by column.
    Y = rng.normal(size=(25, 3))
    Y[[1, 4], 0] = np.nan
    P = Y + rng.normal(size=(25, 3))
    P[:, 2] = 1.0  # constant prediction: no correlation defined
    r2, p2 = masked_pearson(np.nan_to_num(Y, nan=np.nan), P, "greater")
    ok = np.isfinite(Y[:, 0])
    ref0 = stats.pearsonr(Y[ok, 0], P[ok, 0], alternative="greater")
    assert r2[0] == pytest.approx(ref0.statistic) and p2[0] == pytest.approx(ref0.pvalue)
    assert r2[1] == pytest.approx(stats.pearsonr(Y[:, 1], P[:, 1]).statistic)
    assert np.isnan(r2[2]) and np.isnan(p2[2])
    assert significant(np.array([0.01, 0.2, 0.03]), 0.05, "majority")
    assert not significant(np.array([0.01, 0.2, 0.3]), 0.05, "majority")
    assert not significant(np.array([0.01, 0.02, np.nan]), 0.05, "all")


def test_expression_planted_and_null_genes() -> None:
    rng = np.random.default_rng(1)
    n = 60
    X = rng.normal(size=(n, 8))
    patients = [f"TCGA-AA-{i:04d}" for i in range(n)]
    Y = np.stack([2 * X[:, 0] + rng.normal(0, 0.5, n), rng.normal(size=n)], axis=1)
    task = LuadExpressionTask(LuadExpressionOptions(n_jobs=1))
    units, res = _run(task, _dataset(patients, "expression", ["UP", "NULL"], Y), X)
    assert res.metric == "pearson_r"
    up, null = res.per_target["UP"], res.per_target["NULL"]
    assert up.mean > 0.6 and up.extra["significant"]
    assert abs(null.mean) < 0.35
    assert up.fold_scores.shape == (3, 3) and np.isfinite(up.fold_scores).all()
    np.testing.assert_allclose(res.repeat_scores, (up.repeat_scores + null.repeat_scores) / 2)
    assert [p.target for p in res.predictions] == ["UP", "NULL"]
    assert res.predictions[0].y_pred.shape == (3, n)
    assert res.details["alignment"]["patients_used"] == n
    assert res.details["cost"] == 1.0 and res.details["gamma"] == "1/n_features"


def test_null_expression_significance_near_nominal_rate() -> None:
    """Random features, 200 genes: the fraction called significant stays near alpha."""
    rng = np.random.default_rng(2)
    n, G = 50, 200
    X = rng.normal(size=(n, 6))
    Y = rng.lognormal(2, 1, size=(n, G))
    patients = [f"TCGA-BB-{i:04d}" for i in range(n)]
    task = LuadExpressionTask(LuadExpressionOptions(n_jobs=1))
    genes = [f"G{j}" for j in range(G)]
    _, res = _run(task, _dataset(patients, "expression", genes, Y), X, repeats=3, folds=5)
    assert len(res.per_target) == G
    fold_mean = np.nanmean([np.nanmean(t.fold_scores) for t in res.per_target.values()])
    assert abs(fold_mean) < 0.03
    assert float(np.mean(res.repeat_scores)) == pytest.approx(fold_mean)  # shown = tested
    pooled = np.nanmean([t.extra["pooled_scores"] for t in res.per_target.values()])
    assert -0.12 < pooled < 0.03  # the study's pooled r: never above chance
    # One-sided alpha 0.05 with a majority rule: expect ~5 %; binomial SD ~1.5 %.
    assert res.details["fraction_significant"] < 0.12


def test_mutation_null_auc_near_half_with_real_shaped_labels(real_labels: Path) -> None:
    """Random features, the real table's labels (real prevalences): no gene beats chance.

    Per-fold AUCs average 0.5; the pooled AUC sits *below* 0.5 (a LASSO that keeps only its
    intercept predicts each fold's training prevalence, which anti-correlates with the test
    fold's), never above it: an upward drift would mean leakage.
    """
    genes = ["TP53", "KRAS", "LRP1B", "STK11", "EGFR"]
    m = load_mutations(real_labels, genes=genes)
    rng = np.random.default_rng(3)
    keep = np.sort(rng.choice(len(m.patients), 120, replace=False))
    patients = [m.patients[i] for i in keep]
    X = rng.normal(size=(120, 6))
    opts = LuadMutationOptions(n_jobs=1, inner_folds=5)
    _, res = _run(
        LuadMutationTask(opts), _dataset(patients, "mutations", m.genes, m.values[keep]), X
    )
    assert list(res.per_target) == genes
    fold_mean = np.mean([t.mean for t in res.per_target.values()])
    pooled = np.mean([np.mean(t.extra["pooled_scores"]) for t in res.per_target.values()])
    assert abs(fold_mean - 0.5) < 0.05
    assert 0.35 < pooled < 0.53
    assert float(np.mean(res.repeat_scores)) == pytest.approx(fold_mean)
    assert res.details["n_significant"] <= 1  # nominal 5 % of 5 genes


def test_mutation_planted_gene_and_reported_skips() -> None:
    rng = np.random.default_rng(4)
    n = 60
    y = (rng.permutation(n) < 24).astype(float)
    X = rng.normal(size=(n, 10))
    X[:, 0] += 2.0 * y
    one_class = np.zeros(n)
    rare = np.zeros(n)
    rare[:2] = 1
    missing = np.full(n, np.nan)
    values = np.stack([y, one_class, rare, missing], axis=1)
    genes = ["PLANT", "ONECLASS", "RARE", "NOVALUES"]
    patients = [f"TCGA-CC-{i:04d}" for i in range(n)]
    opts = LuadMutationOptions(n_jobs=1, inner_folds=5, genes=[*genes, "ABSENT"])
    task = LuadMutationTask(opts)
    _, res = _run(task, _dataset(patients, "mutations", genes, values), X)
    assert list(res.per_target) == ["PLANT"]
    plant = res.per_target["PLANT"]
    assert plant.mean > 0.8 and plant.extra["significant"] and plant.extra["n_mutated"] == 24
    skipped = res.details["genes_skipped"]
    assert skipped["ONECLASS"].startswith("one class only (0 mutated")
    assert skipped["RARE"].startswith("too few mutated patients (2 < 5)")
    assert skipped["NOVALUES"] == "all values missing"
    assert skipped["ABSENT"].startswith("not in the mutations labels")
    assert res.details["lambda_rule"] == "lambda.min"
    assert res.predictions[0].y_pred.shape == (3, n)


def test_mutation_genes_fitted_together_equal_each_gene_alone() -> None:
    """Genes with the same known patients are fitted in one pass per outer fold; genes with
    missing statuses in another. Each gene's predictions equal the one-gene engine's on its
    own patients, and skips are reported in the order of the gene list."""
    rng = np.random.default_rng(5)
    n = 60
    X = rng.normal(size=(n, 12))
    a = (rng.random(n) < 0.4).astype(float)
    b = (X[:, 1] + rng.normal(size=n) > 0.3).astype(float)
    c = (rng.random(n) < 0.5).astype(float)
    c[rng.permutation(n)[:9]] = np.nan  # another set of known patients: its own group
    values = np.stack([a, np.zeros(n), b, c], axis=1)
    genes = ["A", "NONE", "B", "C"]
    patients = [f"TCGA-CC-{i:04d}" for i in range(n)]
    task = LuadMutationTask(LuadMutationOptions(n_jobs=1, inner_folds=4, genes=genes))
    dataset = _dataset(patients, "mutations", genes, values)
    units, res = _run(task, dataset, X)
    plan = make_plan(units.ids, units.strata, units.groups, 3, 3, 0)
    assert list(res.per_target) == ["A", "B", "C"]
    assert list(res.details["genes_skipped"]) == ["NONE"]
    order = [patients.index(u) for u in units.ids]
    for pred in res.predictions:
        y = values[order, genes.index(pred.target)]
        ok = np.isfinite(y)
        alone = lasso_cross_val_predict(
            X[order][ok], y[ok], plan.assignments[:, ok], inner_folds=4, seed=plan.seed
        )
        np.testing.assert_array_equal(pred.y_pred[:, ok], alone)
        assert np.isnan(pred.y_pred[:, ~ok]).all()


def test_expression_constant_and_sparse_genes_are_skipped_not_fatal() -> None:
    rng = np.random.default_rng(5)
    n = 30
    X = rng.normal(size=(n, 4))
    good = X[:, 0] + rng.normal(0, 0.3, n)
    flat = np.full(n, 3.0)
    almost_flat = np.zeros(n)
    almost_flat[0] = 1.0  # constant on every training fold that leaves patient 0 out
    sparse = np.full(n, np.nan)
    sparse[:5] = rng.normal(size=5)
    values = np.stack([good, flat, almost_flat, sparse], axis=1)
    genes = ["GOOD", "FLAT", "ONEHOT", "SPARSE"]
    task = LuadExpressionTask(LuadExpressionOptions(n_jobs=1))
    patients = [f"TCGA-DD-{i:04d}" for i in range(n)]
    _, res = _run(task, _dataset(patients, "expression", genes, values), X)
    assert list(res.per_target) == ["GOOD"]
    skipped = res.details["genes_skipped"]
    assert skipped["FLAT"] == "no variance"
    assert skipped["ONEHOT"].startswith("constant on the training patients")
    assert skipped["SPARSE"] == "only 5 patients with a value"


def test_alignment_reports_both_sides_and_no_overlap_is_an_error() -> None:
    n = 20
    values = np.arange(n, dtype=float)[:, None]
    label_patients = [f"TCGA-EE-{i:04d}" for i in range(n)]
    ds = _dataset(label_patients[:15], "expression", ["G"], values[:15])
    matrix = LabelMatrix("expression", Path("e.tsv"), label_patients[5:], ["G"], values[5:])
    ds.labels = InMemoryLabels(expression_matrix=matrix)
    task = LuadExpressionTask(LuadExpressionOptions(n_jobs=1))
    units = task.units(ds, ds.items)
    assert units.ids == label_patients[5:15]
    a = task.alignment
    assert a["dropped_features_without_labels"] == 5
    assert a["dropped_labels_without_features"] == 5
    assert a["dropped_labels_without_features_examples"][0] == "TCGA-EE-0015"
    other = LabelMatrix("expression", Path("e.tsv"), ["X1", "X2"], ["G"], values[:2])
    ds.labels = InMemoryLabels(expression_matrix=other)
    with pytest.raises(DataError, match="no patient has both features and expression labels"):
        task.units(ds, ds.items)


def test_patient_vector_weights_slides_by_tiles(tmp_path: Path, cli, luad_plugins) -> None:  # type: ignore[no-untyped-def]
    """Two slides per patient: 9 tiles at +signal and 1 tile at -signal. The mean of all 10
    tiles carries the signal (0.8 × signal); the mean of the two slide means is pure noise."""
    import json

    from histobench.benchmark.h5io import write_slide_features
    from tests.datasets.luad.helpers import write_maf

    rng = np.random.default_rng(21)
    n, dim = 40, 4
    patients = [f"TCGA-WT-{i:04d}" for i in range(n)]
    signal = rng.normal(size=n)
    feats = tmp_path / "features"
    for i, pid in enumerate(patients):
        noise = rng.normal(0, 0.05, size=(10, dim))
        big = np.tile([signal[i], 0.0, 0.0, 0.0], (9, 1)) + noise[:9]
        small = np.array([[-signal[i], 0.0, 0.0, 0.0]]) + noise[9:]
        small[0, 1:] = rng.normal(size=dim - 1)  # slide means differ in noise only
        write_slide_features(feats / f"{pid}-01Z-00-DX1.h5", big, np.zeros((9, 2)))
        write_slide_features(feats / f"{pid}-01Z-00-DX2.h5", small, np.zeros((1, 2)))
    write_maf(tmp_path / "m.maf", [("TTN", "Silent", f"{p}-01A-11D-A000-08") for p in patients])
    log_value = 6 + signal
    lines = ["gene_name\t" + "\t".join(f"{p}-01A" for p in patients)]
    lines.append("GENEA\t" + "\t".join(f"{2**v - 1:.6f}" for v in log_value))
    (tmp_path / "e.tsv").write_text("\n".join(lines) + "\n")
    toml = tmp_path / "cohort.toml"
    toml.write_text(
        '[cohort]\nname = "weights"\nfeatures = "features"\nmutations = "m.maf"\n'
        'expression = "e.tsv"\ngenes = ["GENEA"]\n'
    )
    code, out, err = cli(
        "run", "--task", "luad-expression", "--dataset", toml, "--repeats", "2", "--folds", "4",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    assert record["n_units"] == n
    assert record["per_target"]["GENEA"]["mean"] > 0.8  # unweighted slide means: r ≈ 0
