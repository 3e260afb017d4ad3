"""DeLong's paired AUC test: worked example, a brute-force reference, and R pROC parity."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from histobench.statistics import delong_over_repeats, delong_test
from histobench.statistics.delong import delong_covariance
from histobench.statistics.results import StatisticsError


def _brute_force_delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong et al. (1988) straight from the definition: the O(m·n) kernel matrix."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    aucs = psi.mean(axis=(1, 2))
    v10 = psi.mean(axis=2)  # per positive
    v01 = psi.mean(axis=1)  # per negative
    return aucs, np.cov(v10) / m + np.cov(v01) / n


def _data(seed: int, n: int = 60, ties: bool = False) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    a = y * 1.0 + rng.normal(size=n)
    b = y * 0.5 + rng.normal(size=n) + 0.3 * a
    if ties:
        a, b = np.round(a, 0), np.round(b, 1)
    return y, a, b


def test_auc_worked_example() -> None:
    # Classic 4-sample example: the positives (0.35, 0.8) beat 3 of the 4 (positive, negative)
    # pairs, AUC = 0.75; B ranks every positive above every negative, AUC = 1.
    y = np.array([0, 0, 1, 1])
    r = delong_test(y, [0.1, 0.4, 0.35, 0.8], [0.1, 0.2, 0.3, 0.4])
    assert (r.auc_a, r.auc_b) == (0.75, 1.0)
    assert r.effect_size == -0.25


@pytest.mark.parametrize("ties", [False, True])
def test_midrank_algorithm_equals_brute_force_delong(ties: bool) -> None:
    y, a, b = _data(1, ties=ties)
    aucs, cov = delong_covariance(y, np.vstack([a, b]))
    ref_aucs, ref_cov = _brute_force_delong(y, np.vstack([a, b]))
    np.testing.assert_allclose(aucs, ref_aucs, rtol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10)
    assert aucs[0] == pytest.approx(roc_auc_score(y, a))


def test_identical_scores_give_p_one() -> None:
    y, a, _ = _data(2)
    r = delong_test(y, a, a.copy())
    assert (r.statistic, r.p_value, r.effect_size) == (0.0, 1.0, 0.0)


def test_delong_input_errors() -> None:
    with pytest.raises(StatisticsError, match="positive"):
        delong_test([1, 1, 1, 0], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(StatisticsError, match="0/1"):
        delong_test([1, 2, 1, 2], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4])


def test_nan_scores_drop_the_patient() -> None:
    y, a, b = _data(3)
    a2 = a.copy()
    a2[0] = np.nan
    r = delong_test(y, a2, b)
    ref = delong_test(y[1:], a[1:], b[1:])
    assert r.n == y.size - 1 and r.statistic == pytest.approx(ref.statistic)
    assert "dropped" in r.notes


def test_over_repeats_uses_the_repeat_averaged_scores() -> None:
    rng = np.random.default_rng(4)
    y, a, b = _data(4)
    sa = a + rng.normal(0, 0.3, size=(5, a.size))  # five repeats of out-of-fold scores
    sb = b + rng.normal(0, 0.3, size=(5, b.size))
    r = delong_over_repeats(y, sa, sb)
    head = delong_test(y, sa.mean(axis=0), sb.mean(axis=0))
    assert (r.statistic, r.p_value, r.auc_a, r.auc_b) == (
        head.statistic, head.p_value, head.auc_a, head.auc_b,
    )  # fmt: skip
    assert len(r.per_repeat) == 5
    per = [delong_test(y, sa[i], sb[i]) for i in range(5)]
    assert [p.p_value for p in r.per_repeat] == pytest.approx([p.p_value for p in per])
    assert r.median_p == pytest.approx(np.median([p.p_value for p in per]))
    assert r.mean_auc_difference == pytest.approx(np.mean([p.effect_size for p in per]))
    d = r.to_dict()
    assert len(d["per_repeat"]) == 5 and d["test"] == "delong_over_repeats"


# --------------------------------------------------------------------------------------------
# R pROC parity
# --------------------------------------------------------------------------------------------

_R_SCRIPT = r"""
suppressMessages(library(pROC))
args <- commandArgs(trailingOnly = TRUE)
for (f in args) {
  d <- read.csv(f)
  r1 <- roc(d$y, d$a, levels = c(0, 1), direction = "<", quiet = TRUE)
  r2 <- roc(d$y, d$b, levels = c(0, 1), direction = "<", quiet = TRUE)
  t <- roc.test(r1, r2, method = "delong", paired = TRUE)
  cat(sprintf("%.17g", c(t$statistic, t$p.value, t$estimate, t$conf.int)), "\n")
}
"""


@pytest.mark.r
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript (R with pROC) not installed")
def test_delong_equals_r_proc(tmp_path: Path) -> None:
    cases = {
        "continuous": _data(10),
        "ties": _data(11, ties=True),
        "small": _data(12, n=15),
        "a_below_chance": (lambda y, a, b: (y, -a, b))(*_data(13)),
    }
    rng = np.random.default_rng(14)
    y, a, b = _data(14)
    sa, sb = a + rng.normal(0, 0.5, (4, a.size)), b + rng.normal(0, 0.5, (4, b.size))
    cases["repeat_average"] = (y, sa.mean(axis=0), sb.mean(axis=0))
    files = []
    for name, (yy, aa, bb) in cases.items():
        f = tmp_path / f"{name}.csv"
        rows = "\n".join(
            f"{int(t)},{float(u)!r},{float(v)!r}" for t, u, v in zip(yy, aa, bb, strict=True)
        )
        f.write_text("y,a,b\n" + rows + "\n")
        files.append(str(f))
    script = tmp_path / "delong.R"
    script.write_text(_R_SCRIPT)
    out = subprocess.run(
        ["Rscript", str(script), *files], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0 and "pROC" in out.stderr:
        pytest.skip(f"R package pROC not available: {out.stderr.strip()[:200]}")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(cases)
    for (name, (yy, aa, bb)), line in zip(cases.items(), lines, strict=True):
        z, p, auc1, auc2, lo, hi = (float(v) for v in line.split())
        r = delong_test(yy, aa, bb)
        assert r.statistic == pytest.approx(z, abs=1e-6), name
        assert r.p_value == pytest.approx(p, abs=1e-6), name
        assert (r.auc_a, r.auc_b) == pytest.approx((auc1, auc2), abs=1e-9), name
        assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi), abs=1e-6), name
    # The repeat rule's headline is exactly the pROC test on the averaged scores.
    z, p = (float(v) for v in lines[-1].split()[:2])
    r = delong_over_repeats(y, sa, sb)
    assert (r.statistic, r.p_value) == pytest.approx((z, p), abs=1e-6)
