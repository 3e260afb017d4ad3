"""Paired statistics for comparing feature extractors on a shared split plan.

Every test is a small pure function on numpy arrays, usable without the CLI, returning a frozen
``TestResult`` (``effect_size`` = mean paired difference A − B unless its ``notes`` say
otherwise, with a 95 % CI). Each is checked against a reference (scipy, statsmodels, R pROC).
"""

from __future__ import annotations

from histobench.statistics.calibration import CalibrationResult, null_calibration
from histobench.statistics.cv_tests import (
    corrected_resampled_ttest,
    naive_paired_ttest,
    paired_permutation_test,
    wilcoxon_signed_rank,
)
from histobench.statistics.delong import (
    DeLongRepeatsResult,
    DeLongResult,
    delong_over_repeats,
    delong_test,
)
from histobench.statistics.multiplicity import (
    PerTargetComparison,
    benjamini_hochberg,
    holm,
    per_target_comparison,
    sign_test,
)
from histobench.statistics.ranking import FriedmanNemenyiResult, friedman_nemenyi
from histobench.statistics.results import StatisticsError, TestResult

__all__ = [
    "CalibrationResult",
    "DeLongRepeatsResult",
    "DeLongResult",
    "FriedmanNemenyiResult",
    "PerTargetComparison",
    "StatisticsError",
    "TestResult",
    "benjamini_hochberg",
    "corrected_resampled_ttest",
    "delong_over_repeats",
    "delong_test",
    "friedman_nemenyi",
    "holm",
    "naive_paired_ttest",
    "null_calibration",
    "paired_permutation_test",
    "per_target_comparison",
    "sign_test",
    "wilcoxon_signed_rank",
]
