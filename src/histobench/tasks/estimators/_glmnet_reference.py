"""The reference LASSO path solver (numpy): proximal Newton (IRLS) on a working set, each
quadratic sub-problem solved exactly by feature-sign search (scikit-learn's coordinate descent as
its fallback), then a full KKT check. Slower than the compiled solver; kept as its fallback and
as the reference in the tests (see :mod:`.glmnet`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.linalg.lapack import dposv as _dposv

from histobench.tasks.estimators._glmnet_common import (
    DEVMAX,
    FDEV,
    MNLAM,
    VMIN,
    LogisticPath,
    dev2,
    glmnet_q,
    lambda_sequence_std,
    sigmoid,
    standardize,
)

try:  # compiled coordinate descent; private but stable across scikit-learn 1.x releases
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model._cd_fast import enet_coordinate_descent as _sk_cd
except ImportError:  # pragma: no cover - exercised only with a future scikit-learn
    _sk_cd = None

_RNG = np.random.RandomState(0)  # unused by the cyclic solver but required by its signature


def _cd_numpy(
    w: np.ndarray, alpha: float, Xt: np.ndarray, yt: np.ndarray, max_iter: int, tol: float
) -> None:
    """Pure-numpy cyclic coordinate descent, used only when the compiled one is unavailable."""
    col_sq = (Xt * Xt).sum(axis=0)
    r = yt - Xt @ w
    for _ in range(max_iter):
        dmax = 0.0
        for j in range(w.shape[0]):
            if col_sq[j] == 0:
                continue
            u = Xt[:, j] @ r + col_sq[j] * w[j]
            new = np.sign(u) * max(abs(u) - alpha, 0.0) / col_sq[j]
            d = new - w[j]
            if d != 0.0:
                r -= d * Xt[:, j]
                w[j] = new
                dmax = max(dmax, col_sq[j] * d * d)
        if dmax < tol:
            return


def _weighted_lasso(
    w: np.ndarray, lam: float, Xt: np.ndarray, yt: np.ndarray, tol: float, max_iter: int
) -> None:
    """Solve ``min 0.5 ||yt - Xt w||^2 + lam ||w||_1`` in place (warm start from ``w``)."""
    if _sk_cd is None:  # pragma: no cover
        _cd_numpy(w, lam, Xt, yt, max_iter, tol * float(yt @ yt))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _sk_cd(w, lam, 0.0, Xt, yt, max_iter, tol, _RNG, 0, 0)


def _lasso_ls(
    Xt: np.ndarray, yt: np.ndarray, lam: float, b: np.ndarray, max_iter: int = 500
) -> bool:
    """Exact ``min 0.5 ||yt - Xt b||^2 + lam ||b||_1`` by feature-sign search (Lee et al., 2007).

    Active-set iterations: solve the normal equations for the current signs (Gram of the nonzero
    coefficients only), walk back to the best sign-change point when a sign would flip, add KKT
    violators. Exact to rounding and few iterations when warm-started, where coordinate descent
    crawls on ill-conditioned IRLS weights. Updates ``b`` in place; returns False when it did
    not converge (the caller falls back to coordinate descent).
    """
    c = Xt.T @ yt
    tol = 1e-12 * max(1.0, float(np.max(np.abs(c), initial=0.0)))
    for _ in range(max_iter):
        g = c - Xt.T @ (Xt @ b)  # minus the gradient of the smooth part
        active = b != 0
        viol = ~active & (np.abs(g) > lam + tol)
        opt_active = np.all(np.abs(g[active] - lam * np.sign(b[active])) <= 1e3 * tol)
        if opt_active and not viol.any():
            return True
        sgn = np.sign(b)
        if opt_active:
            sgn[viol] = np.sign(g[viol])
        A = np.flatnonzero(sgn != 0)
        XA = Xt[:, A]
        gram, rhs = XA.T @ XA, c[A] - lam * sgn[A]
        # Cholesky (half of LU's work); a Gram that is singular to working precision falls
        # back to the general solver.
        _, target, info = _dposv(gram, rhs)
        if info != 0:
            try:
                target = np.linalg.solve(gram, rhs)
            except np.linalg.LinAlgError:
                return False
        cur = b[A]
        if np.all(np.sign(target) == sgn[A]):
            b[A] = target
            continue
        # Candidate points: the full step and every zero crossing on the segment.
        d = target - cur
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -cur / d
        ts = np.unique(np.concatenate([t[(t > 0) & (t < 1)], [1.0]]))
        cand = cur[None, :] + ts[:, None] * d[None, :]
        cand[np.abs(cand) < 1e-15 * (1 + np.abs(cur))[None, :]] = 0.0
        r0, dr = yt - XA @ cur, XA @ d
        # 0.5 ||r0 - t dr||^2 + lam ||cand(t)||_1 at every candidate t at once
        f = 0.5 * (r0 @ r0 - 2.0 * ts * (r0 @ dr) + ts * ts * (dr @ dr))
        f = f + lam * np.abs(cand).sum(axis=1)
        b[A] = cand[int(np.argmin(f))]
        b[np.abs(b) < 1e-14] = 0.0  # the coordinate(s) that crossed zero leave the active set
    return False


class _PathSolver:
    """Warm-started lasso-logistic solver on standardised columns ``Xs`` (n, p_kept)."""

    def __init__(self, Xs: np.ndarray, y: np.ndarray, thresh: float, max_newton: int) -> None:
        self.Xs = Xs
        self.y = y
        self.n = Xs.shape[0]
        ybar = float(y.mean())
        self.dev0 = -(np.log(ybar / (1 - ybar)) * ybar + np.log(1 - ybar))
        self.shr = thresh * self.dev0
        self.max_newton = max_newton
        self.cd_tol = 1e-8
        self.b0 = float(np.log(ybar / (1 - ybar)))
        self.b = np.zeros(Xs.shape[1])
        self.eta = np.full(self.n, self.b0)
        self.grad = (y - ybar) @ Xs / self.n  # X_std^T (y - p) / n at the current solution
        self.ever = np.zeros(Xs.shape[1], dtype=bool)

    def _objective(self, eta: np.ndarray, b: np.ndarray, lam: float) -> float:
        # mean logistic loss, computed stably
        loss = np.mean(np.logaddexp(0.0, eta) - self.y * eta)
        return float(loss + lam * np.abs(b).sum())

    def _newton_on(self, W: np.ndarray, lam: float) -> None:
        """IRLS / proximal Newton restricted to columns ``W`` until glmnet's criterion < shr."""
        Xw = self.Xs[:, W]
        Xw2 = Xw * Xw
        bW = self.b[W].copy()
        f_old = self._objective(self.eta, bW, lam)
        for _ in range(self.max_newton):
            p = sigmoid(self.eta)
            v = np.clip(p * (1.0 - p), 1e-12, None) / self.n
            sv = float(v.sum())
            xbar = (v @ Xw) / sv
            # IRLS working response without the intercept (removed by the v-weighted centring).
            z = Xw @ bW + (self.y - p) / (self.n * v)
            zc = z - float(v @ z) / sv
            sq = np.sqrt(v)
            Xt = sq[:, None] * (Xw - xbar)
            yt = sq * zc
            bnew = bW.copy()
            if not _lasso_ls(Xt, yt, lam, bnew):
                bnew = bW.copy()
                _weighted_lasso(bnew, lam, np.asfortranarray(Xt), yt, self.cd_tol, 100000)
            b0new = self._intercept(Xw, bnew, p, v, sv)
            eta_new = b0new + Xw @ bnew
            # Step-halving keeps the objective monotone near separation (glmnet does not need
            # it in practice; it costs one objective evaluation).
            step = 1.0
            f_new = self._objective(eta_new, bnew, lam)
            while f_new > f_old + 1e-14 * abs(f_old) and step > 1e-6:
                step *= 0.5
                bnew = bW + step * (bnew - bW)
                b0new = self.b0 + step * (b0new - self.b0)
                eta_new = b0new + Xw @ bnew
                f_new = self._objective(eta_new, bnew, lam)
            f_old = f_new
            xv = v @ Xw2
            dlx = max(sv * (b0new - self.b0) ** 2, float(np.max(xv * (bnew - bW) ** 2, initial=0)))
            self.b0, bW, self.eta = b0new, bnew, eta_new
            if dlx < self.shr:
                break
        self.b[W] = bW

    def _intercept(
        self, Xw: np.ndarray, bnew: np.ndarray, p: np.ndarray, v: np.ndarray, sv: float
    ) -> float:
        # Weighted least-squares intercept of the quadratic model:
        # z_full = eta + (y - p)/(n v); b0 = vmean(z_full) - vmean(Xw) . b
        z_full = self.eta + (self.y - p) / (self.n * v)
        return float(v @ z_full) / sv - float(((v @ Xw) / sv) @ bnew)

    def solve(self, lam: float, lam_prev: float) -> None:
        """Move the solution to ``lam`` (warm start from the current one)."""
        strong = np.abs(self.grad) > (2.0 * lam - lam_prev)
        W = np.flatnonzero(self.ever | strong | (self.b != 0))
        while True:
            if W.size:
                self._newton_on(W, lam)
            else:
                self._intercept_only()
            p = sigmoid(self.eta)
            self.grad = (self.y - p) @ self.Xs / self.n
            outside = np.ones(self.Xs.shape[1], dtype=bool)
            outside[W] = False
            viol = outside & (np.abs(self.grad) > lam * (1.0 + 1e-9))
            if not viol.any():
                break
            W = np.union1d(W, np.flatnonzero(viol))
        self.ever |= self.b != 0

    def _intercept_only(self) -> None:
        ybar = float(self.y.mean())
        self.b0 = float(np.log(ybar / (1 - ybar)))
        self.eta = np.full(self.n, self.b0)


def reference_path(
    X: np.ndarray,
    y: np.ndarray,
    lambdas: Sequence[float] | np.ndarray | None,
    nlambda: int,
    lambda_min_ratio: float | None,
    thresh: float,
    max_newton: int,
) -> LogisticPath:
    """The numpy solver (proximal Newton + feature-sign search on a working set)."""
    n, p = X.shape
    Xs, xm, xs, keep = standardize(X)
    user = lambdas is not None
    lam_seq = (
        np.asarray(lambdas, dtype=np.float64)
        if user
        else lambda_sequence_std(Xs, y, p, nlambda, lambda_min_ratio)
    )
    solver = _PathSolver(Xs, y, thresh, max_newton)
    dev0 = solver.dev0
    L = lam_seq.shape[0]
    a0 = np.empty(L)
    beta = np.zeros((L, Xs.shape[1]))
    dev = np.empty(L)
    lam_prev = lam_seq[0] if not user else max(lam_seq[0], float(np.max(np.abs(solver.grad))))
    last = L
    for k in range(L):
        lam = float(lam_seq[k])
        if k == 0 and not user:
            pass  # lambda_max: the intercept-only model is the solution (glmnet's "big" lambda)
        else:
            solver.solve(lam, lam_prev)
        lam_prev = lam
        a0[k], beta[k] = solver.b0, solver.b
        q = glmnet_q(solver.eta)
        dev[k] = (dev0 - dev2(y, q)) / dev0
        if float(np.sum(q * (1.0 - q))) / n <= VMIN:
            last = k + 1
            break
        if user or k + 1 < min(MNLAM, L):
            continue
        if dev[k] > DEVMAX or (k > 0 and dev[k] - dev[k - 1] < FDEV):
            last = k + 1
            break
    coefs = np.zeros((last, p))
    coefs[:, keep] = beta[:last] / xs[keep]
    intercepts = a0[:last] - coefs @ xm
    return LogisticPath(lam_seq[:last].copy(), intercepts, coefs, dev[:last], 2.0 * n * dev0)
