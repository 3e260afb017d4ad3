"""One-vs-rest linear SVC (L2 penalty, squared hinge) whose every solver stops at one certified
tolerance: the relative duality gap.

The objective per class ``c`` is scikit-learn / liblinear ``LinearSVC``'s (``fit_intercept=True``,
``intercept_scaling=s``; liblinear penalises the intercept as an extra feature of value ``s``):

    P(w_c, b_c) = 0.5 ||w_c||^2 + 0.5 (b_c / s)^2 + C * sum_i max(0, 1 - y_ic (x_i . w_c + b_c))^2

with ``y_ic = +1`` for class ``c`` and ``-1`` otherwise, on features standardised with the
training rows' mean and (1/n) standard deviation (constant columns get scale 1).

**One stopping rule for every solver.** Whatever solver runs, a fit ends only when, for every
class, the duality gap of its weights (:mod:`._svc_primal`; computed in float64) is at most
``tol`` times the objective (default ``tol = 1e-6``). A solver that stops earlier by its own
rule (the dual's projected-gradient spread, liblinear's tolerance, float32 rounding) is
continued by float64 L-BFGS from its weights until the gap rule holds. The gap bounds the distance to the unique optimum, ``||w - w*||^2 <= 2 gap``,
so two solvers that both converged give decision values within ``sqrt(2 gap_1) + sqrt(2 gap_2)``
times a row's norm (standardised, with the intercept feature) of each other: the choice of
solver cannot change a prediction beyond that. ``n_iter_``, ``solver_``, ``duality_gap_``
(relative, per class) and ``converged_`` record every fit; a fit that reaches ``max_iter``
before the rule holds is reported (``converged_ = False``) and warned about.

Solvers (``solver="auto"`` chooses by rows ``n`` and features ``p``; they differ in speed only):

* ``"newton"`` (auto when ``2 n <= p``): primal Newton in the span of the rows (``_svc_newton``).
* ``"dual"`` (auto when ``p/2 < n <= 4 p``): compiled dual coordinate descent (``_svc_dual``;
  Hsieh et al. 2008, liblinear's ``-s 1`` with random order and shrinking), all classes swept
  together row by row, run to a projected-gradient spread of ``dual_tol``, then certified.
* ``"lbfgs"`` (auto when ``n > 4 p`` or with a ``warm_start``): batched L-BFGS, one pass over
  ``X`` per step for all classes (``_svc_primal``).
* ``"liblinear"``: scikit-learn's ``LinearSVC(dual=True)`` at ``dual_tol``, then certified.

Where the dual hands over (``dual_tol``, default 3e-4) changes speed only. Measured on the
benchmark's folds 0 and 1 (5,744 x 2,048 x 9 classes, float32, one thread, the two settings
alternating in one process, 3 December 2026): a whole certified fit took 7.5-8.3 s of CPU at
3e-4 against 11.0-12.1 s at the former 3e-3, because the dual's relative duality gap at
hand-over is 4e-3 instead of 0.3 and the float64 L-BFGS polish needs 52 iterations instead
of 195; same accuracy, decision values within 2e-4. Handing over at 1e-4 polished less
(22 iterations) but took longer in the dual (7.5 s against 5.4 s).

Older measurements of the dual and L-BFGS at the study's size, before the common gap rule:

Measured on the benchmark's generated fold 0 (7,180 tiles x 2,048 features x 9 classes, 5,744
training rows; ``benchmarks/bench_estimators.py``), float32, one thread, CPU seconds per fit on a
loaded 2-core machine, against the exact minimiser (Newton to a gradient of 3e-11; test accuracy
0.7904):

* dual, ``dual_tol = 3e-3``: 2.6-3.0 s, 278 epochs; objective 8e-5 (relative, worst class) above
  the minimum, weights 0.11% away, 0 test predictions different, accuracy 0.7904 (folds 1 and 2:
  3.6 and 2.7 s, +7e-5 and +8e-5 against a run at 1e-4; L-BFGS there +1.2e-4 and +1.3e-4,
  6.2 and 5.8 s). Two such fits side by side on the 2 cores took ~1.3x the CPU each (shared
  memory bandwidth; L-BFGS ~1.15x). First call compiles (~5 s; then numba's cache). At 1e-2:
  ~2.1 s, objective +8e-4, weights 0.3%, 1 prediction different; at 5e-3: +2e-4, 0.17%;
  at 1e-3: ~4.4 s, +9e-6. The weights and dot products run in ``dtype`` (float32: ~20%
  faster than float64 weights, same answer to 1e-6).
* L-BFGS, ``tol = 1e-4``: 5.4-5.7 s, 310 iterations; objective +1.2e-4, weights 0.96% away,
  9 predictions different, accuracy 0.7918.
* ``LinearSVC`` default (trust-region Newton, ``dual='auto'`` -> primal) stops at ``max_iter =
  1000`` without converging: objective 1.6% above the minimum, weights 19% away, 5% of test
  predictions different, accuracy 0.7960.

The dual wins there because the problem is nearly separable: ~1,700 of 5,744 rows per class are
support vectors, and after shrinking an epoch touches only those, while the primal problem has
Hessian condition ~1e4 (hundreds of L-BFGS passes over all rows). With many rows per feature
most rows become support vectors and the dual's condition number grows with ``n``: on generated
data it was slower than L-BFGS from 5.6 rows per feature on (5,744 x 1,024: 3.2 s against 2.5 s;
1,800 x 96: 1,800 epochs against 90 iterations) and faster at 2-4.5 (1,800 x 400: 0.11 against
0.25 s; 1,800 x 900: 0.22 against 0.95 s), hence the 4 p bound.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from histobench.plugins.errors import ConfigError
from histobench.tasks.estimators._svc_dual import dual_cd
from histobench.tasks.estimators._svc_newton import kernel_newton
from histobench.tasks.estimators._svc_primal import fun_grad_gap, lbfgs
from histobench.tasks.estimators._validation import EstimatorInputError, fit_data, predict_data

SOLVERS = ("auto", "newton", "dual", "lbfgs", "liblinear")
# "auto" takes the dual solver up to this many rows per feature (module docstring: measured
# faster than L-BFGS at 2-4.5 rows per feature, slower from 5.6 on).
_DUAL_ROWS_PER_FEATURE = 4


def choose_solver(solver: str, n: int, p: int, warm_start: bool) -> str:
    """The solver ``"auto"`` runs for ``n`` rows and ``p`` features (others are kept)."""
    if solver != "auto":
        return solver
    if warm_start:  # a warm start is a primal point, which only L-BFGS can use
        return "lbfgs"
    # Far fewer rows than features: Newton in the span of the rows is exact and fast.
    # (Nearer n = p the active set takes many more steps to settle: at n = 1,000, p = 2,048
    # Newton is 2x faster than L-BFGS, at n = 2,000 2x slower.)
    if 2 * n <= p:
        return "newton"
    return "dual" if n <= _DUAL_ROWS_PER_FEATURE * p else "lbfgs"


class FastLinearSVC(ClassifierMixin, BaseEstimator):
    """Fast one-vs-rest linear SVC with a certified optimum (module docstring).

    ``tol``: relative duality gap every class must reach, whatever the solver. ``solver``:
    ``"auto"``, ``"newton"``, ``"dual"``, ``"lbfgs"`` or ``"liblinear"``. ``dual_tol``: the
    projected-gradient spread at which the dual solvers hand over to the certificate (speed
    only). ``max_iter`` caps dual epochs and L-BFGS iterations of each phase. ``dtype``: the
    precision of the solvers' products (float32 about twice as fast; the certificate is float64).
    Fitted attributes: ``classes_``, ``coef_`` (K, p) and ``intercept_`` (K,) on the original
    feature scale, ``mean_`` and ``scale_`` (training-fold standardisation), ``coef_std_``,
    ``n_iter_``, ``solver_``, ``objective_`` (K,), ``duality_gap_`` (K, relative to the
    objective), ``converged_``. With two classes there is
    one decision function, like scikit-learn.
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        intercept_scaling: float = 1.0,
        standardize: bool = True,
        tol: float = 1e-6,
        max_iter: int = 1000,
        dtype: type = np.float64,
        solver: str = "auto",
        dual_tol: float = 3e-4,
    ) -> None:
        self.C = C
        self.intercept_scaling = intercept_scaling
        self.standardize = standardize
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype
        self.solver = solver
        self.dual_tol = dual_tol

    def _check_params(self, warm_start: np.ndarray | None) -> None:
        for name in ("C", "tol", "dual_tol", "intercept_scaling"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be positive, got {getattr(self, name)}")
        if self.solver not in SOLVERS:
            raise ConfigError(f"solver: expected one of {SOLVERS}, got {self.solver!r}")
        if not int(self.max_iter) >= 1:
            raise ConfigError(f"max_iter: must be at least 1, got {self.max_iter}")
        if warm_start is not None and self.solver not in ("auto", "lbfgs"):
            raise ConfigError(f"warm_start: only L-BFGS starts from weights, not {self.solver!r}")

    def fit(self, X: Any, y: Any, warm_start: np.ndarray | None = None) -> FastLinearSVC:
        """Fit on ``X`` (n, p), labels ``y``; ``warm_start`` an optional (K, p + 1) initial point
        in the standardised space (the optimum is unique, so it only changes the run time)."""
        self._check_params(warm_start)
        X, y = fit_data(self, X, y, classifier=True)
        classes, yi = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2:
            raise EstimatorInputError(f"y: need at least 2 classes, got {classes.shape[0]} class")
        n, p = X.shape
        if self.standardize:
            mean, scale = X.mean(axis=0), X.std(axis=0)
            scale[~(scale > 0)] = 1.0
        else:
            mean, scale = np.zeros(p), np.ones(p)
        s = float(self.intercept_scaling)
        Xa = np.empty((n, p + 1))  # liblinear's variables: the bias is a feature of value s
        Xa[:, :p], Xa[:, p] = (X - mean) / scale, s
        if classes.shape[0] == 2:  # one decision function, like scikit-learn
            Y = np.where(yi == 1, 1.0, -1.0)[:, None]
        else:
            Y = -np.ones((n, classes.shape[0]))
            Y[np.arange(n), yi] = 1.0
        solver = choose_solver(self.solver, n, p, warm_start is not None)
        W, n_iter = self._first_solver(solver, Xa, Y, yi, warm_start)
        W, n_iter, used, f, gap, ok = self._certify(Xa, Y, W, n_iter, [solver])
        if not ok:
            warnings.warn(
                f"FastLinearSVC: relative duality gap {gap.max():.2e} > tol={self.tol:g} after "
                f"max_iter={self.max_iter} ({'+'.join(used)})",
                ConvergenceWarning,
                stacklevel=2,
            )
        W[p] *= s  # back from liblinear's bias feature to the intercept
        self.classes_, self.mean_, self.scale_ = classes, mean, scale
        self.coef_std_ = W.T.copy()  # (K, p + 1) standardised space, reusable as warm_start
        self.coef_ = (W[:p] / scale[:, None]).T
        self.intercept_ = W[p] - self.coef_ @ mean
        self.n_iter_, self.solver_ = n_iter, "+".join(used)
        self.objective_, self.duality_gap_, self.converged_ = f, gap, ok
        return self

    def _first_solver(
        self, solver: str, Xa: np.ndarray, Y: np.ndarray, yi: np.ndarray, warm: np.ndarray | None
    ) -> tuple[np.ndarray, int]:
        """``W`` (p + 1, K) in liblinear's variables from ``solver``, and its iterations."""
        n, p1 = Xa.shape
        C, s = float(self.C), float(self.intercept_scaling)
        if solver == "newton":
            return kernel_newton(Xa[:, :-1], Y, C, s)
        if solver == "liblinear":
            svc = LinearSVC(
                C=C, dual=True, tol=self.dual_tol, max_iter=self.max_iter, intercept_scaling=s
            )
            with warnings.catch_warnings():  # convergence is judged by the certificate below
                warnings.simplefilter("ignore", ConvergenceWarning)
                svc.fit(Xa[:, :-1], yi)
            return np.vstack([svc.coef_.T, svc.intercept_[None, :] / s]), int(svc.n_iter_)
        Xd = Xa if self.dtype == np.float64 else Xa.astype(self.dtype)
        if solver == "dual":
            Wd = np.zeros((Y.shape[1], p1), dtype=Xd.dtype)
            epochs, _ = dual_cd(
                Xd, np.ascontiguousarray(Y.T), C, float(self.dual_tol), int(self.max_iter), 0, Wd
            )
            return Wd.T.astype(np.float64), int(epochs.max())
        W0 = np.zeros((p1, Y.shape[1])) if warm is None else np.array(warm, dtype=float).T
        if warm is not None:
            W0[-1] /= s
        W, iters = lbfgs(Xd, Y, C, W0, float(self.tol), int(self.max_iter))
        return W, int(iters.max())

    def _certify(
        self, Xa: np.ndarray, Y: np.ndarray, W: np.ndarray, n_iter: int, used: list[str]
    ) -> tuple[np.ndarray, int, list[str], np.ndarray, np.ndarray, bool]:
        """Check the gap rule in float64; where it fails, L-BFGS in float64 continues from
        ``W`` (float32 products cannot resolve the last digits of the gap: measured, a float32
        polish stalled above 1e-6 and only cost time). Returns W, iterations, solvers used,
        objective and relative gap per class, and whether every class met the rule."""
        C, tol = float(self.C), float(self.tol)
        f, _, gap = fun_grad_gap(Xa, Y, W, C)
        todo = np.flatnonzero(gap > tol * f)
        if todo.size:
            Wt, iters = lbfgs(Xa, Y[:, todo], C, W[:, todo].copy(), tol, int(self.max_iter))
            W[:, todo] = Wt
            n_iter += int(iters.max())
            used.append("lbfgs")
            f, _, gap = fun_grad_gap(Xa, Y, W, C)
        return W, n_iter, used, f, gap / f, bool(np.all(gap <= tol * f))

    def decision_function(self, X: Any) -> np.ndarray:
        X = predict_data(self, X)
        d = X @ self.coef_.T + self.intercept_
        return d[:, 0] if d.shape[1] == 1 else d

    def predict(self, X: Any) -> np.ndarray:
        d = self.decision_function(X)
        idx = (d > 0).astype(int) if d.ndim == 1 else d.argmax(axis=1)
        return self.classes_[idx]
