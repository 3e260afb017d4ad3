"""Compiled path solver for :mod:`histobench.tasks.estimators.glmnet` (numba, ``cache=True``).

:func:`solve_path` fits a whole lasso-logistic path (glmnet's objective, truncation rules and
deviance) on standardised columns with an active-set Newton method:

* The active set ``A`` and the signs ``s`` of its coefficients are explicit. For fixed ``A`` and
  ``s`` the objective is smooth; its stationarity system ``[1 X_A]' (y - p) / n = [0, lambda s]``
  is solved by Newton steps with the Hessian ``[1 X_A]' diag(p (1 - p) / n) [1 X_A]``. Its
  Cholesky factor is reused across steps and lambdas (a chord step costs two products with
  ``X_A`` and two triangular solves, a factorisation ~m/3 of them), accelerated by Anderson
  mixing of the last steps; it follows ``A`` by appending a row when a column joins and by a
  rank-one update when one leaves, and is rebuilt from the current weights when a step needs
  backtracking or the residual shrinks slowly.
* A step that flips signs drops those coefficients: all at once (projected Newton step) when
  that lowers the objective, else it stops at the first zero crossing (feature-sign search,
  Lee et al. 2007). A step that moves the linear predictor by more than ``SMALL_STEP``
  backtracks until the objective decreases (smaller steps are in the quadratic regime).
* KKT checks for the columns outside ``A`` run when the residual reaches 1e-3, 1e-6, ... of
  lambda (clear violators join early), and a final one at the tolerance. The product over all
  columns is in float32 with a rigorous rounding bound; between such products the bound
  ``|g_j(r) - g_j(r')| <= ||r - r'|| / sqrt(n)`` (standardised columns have norm ``sqrt(n)``)
  leaves only a few columns whose exact product is needed.

Returns a status instead of raising: a near-singular Hessian (collinear active columns, an
active set as large as ``n``) or a stalled iteration makes the caller fall back to the numpy
reference solver. First-call compilation takes ~30 s; later processes load the cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK = 0
FAIL = 1
SMALL_STEP = 0.1  # max |change of the linear predictor| below which no backtracking is done
SLOW = 0.25  # refactorise when a reused factor shrinks the residual by less than this a step
MIN_CHORD = 3  # ... after at least this many steps with it
MAX_ADD = 8  # violators added in one round
ANDERSON = 3  # memory of the Anderson acceleration of the chord iteration
FULL_KKT_FRACTION = 8  # one product over all columns once 1/8 of them are KKT candidates
LOOSE = 1e-3  # residual (relative to lambda) of the first KKT check at each lambda


@njit(cache=True, fastmath=True, nogil=True)
def column_stats(XT: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over ``rows``: 1/n mean and sd of each column of ``XT.T``, and whether it varies (ju).

    Sums over all N entries with 0/1 weights: contiguous loops the compiler vectorises.
    """
    p, N = XT.shape
    n = rows.shape[0]
    w = np.zeros(N)
    for i in range(n):
        w[rows[i]] = 1.0
    xm = np.zeros(p)
    xs = np.zeros(p)
    varies = np.zeros(p, dtype=np.bool_)
    for j in range(p):
        x = XT[j]
        first = x[rows[0]]
        s = 0.0
        for i in range(N):
            s += w[i] * x[i]
        mu = s / n
        v = 0.0
        dif = 0.0
        for i in range(N):
            t = x[i] - mu
            v += w[i] * t * t
            dif += w[i] * abs(x[i] - first)
        xm[j] = mu
        xs[j] = np.sqrt(v / n)
        varies[j] = dif > 0.0
    return xm, xs, varies


@njit(cache=True, fastmath=True)
def _dot(x: np.ndarray, r: np.ndarray) -> float:
    """Dot product of two contiguous vectors (a loop the compiler vectorises: cheaper than a
    BLAS call for the few hundred entries here)."""
    t = 0.0
    for i in range(x.shape[0]):
        t += x[i] * r[i]
    return t


@njit(cache=True)
def _probs(eta: np.ndarray, prob: np.ndarray) -> None:
    for i in range(eta.shape[0]):
        e = eta[i]
        if e >= 0:
            prob[i] = 1.0 / (1.0 + np.exp(-e))
        else:
            t = np.exp(e)
            prob[i] = t / (1.0 + t)


@njit(cache=True)
def _loss(y: np.ndarray, eta: np.ndarray) -> float:
    """Sum of logistic losses log(1 + e^eta) - y eta, computed stably."""
    s = 0.0
    for i in range(eta.shape[0]):
        e = eta[i]
        if e > 0:
            s += e + np.log1p(np.exp(-e)) - y[i] * e
        else:
            s += np.log1p(np.exp(e)) - y[i] * e
    return s


@njit(cache=True)
def _factor(XA: np.ndarray, m: int, v: np.ndarray, Lf: np.ndarray) -> bool:
    """Cholesky factor of [1 X_A]' diag(v) [1 X_A] into Lf[:m+1, :m+1]; False if not PD."""
    sq = np.sqrt(v)
    H = np.empty((m + 1, m + 1))
    H[0, 0] = v.sum()
    if m > 0:
        W = XA[:m] * sq[None, :]
        G = np.dot(W, W.T)
        h0 = np.dot(XA[:m], v)
        H[1:, 1:] = G
        H[0, 1:] = h0
        H[1:, 0] = h0
    try:
        C = np.linalg.cholesky(H)
    except Exception:  # noqa: BLE001 - numba can only catch the bare class
        return False
    for a in range(m + 1):
        if not C[a, a] > 1e-12 * np.sqrt(H[a, a]) or not np.isfinite(C[a, a]):
            return False
    Lf[: m + 1, : m + 1] = C
    return True


@njit(cache=True, fastmath=True)
def _chol_solve(Lf: np.ndarray, M: int, rhs: np.ndarray, out: np.ndarray) -> None:
    """out = (L L')^-1 rhs for the leading M x M block of the lower factor Lf.

    Both sweeps read rows of Lf (contiguous); fastmath only lets the compiler vectorise these
    short dot products and updates.
    """
    for a in range(M):
        s = rhs[a]
        row = Lf[a]
        for c in range(a):
            s -= row[c] * out[c]
        out[a] = s / row[a]
    for a in range(M - 1, -1, -1):
        row = Lf[a]
        oa = out[a] / row[a]
        out[a] = oa
        for c in range(a):
            out[c] -= row[c] * oa


@njit(cache=True)
def _chol_append(Lf: np.ndarray, M: int, h: np.ndarray, hdiag: float) -> bool:
    """Grow the factor of an M x M matrix by one row/column (h: new off-diagonal entries)."""
    for a in range(M):
        s = h[a]
        for c in range(a):
            s -= Lf[a, c] * Lf[M, c]
        Lf[M, a] = s / Lf[a, a]
    d2 = hdiag
    for c in range(M):
        d2 -= Lf[M, c] * Lf[M, c]
    # A column (nearly) in the span of the active ones would make the Hessian singular.
    if not d2 > 1e-10 * hdiag:
        return False
    Lf[M, M] = np.sqrt(d2)
    return True


@njit(cache=True)
def _chol_delete(Lf: np.ndarray, M: int, i: int) -> None:
    """Factor of the matrix without row/column i: a rank-one update of the trailing block."""
    x = Lf[i + 1 : M, i].copy()
    for a in range(i + 1, M):  # shift rows up and columns left
        for c in range(i):
            Lf[a - 1, c] = Lf[a, c]
        for c in range(i + 1, a + 1):
            Lf[a - 1, c - 1] = Lf[a, c]
    K = M - 1 - i
    for k in range(K):  # cholupdate of the trailing K x K block by x
        kk = i + k
        lkk = Lf[kk, kk]
        rr = np.hypot(lkk, x[k])
        c = rr / lkk
        s = x[k] / lkk
        Lf[kk, kk] = rr
        for a in range(k + 1, K):
            Lf[i + a, kk] = (Lf[i + a, kk] + s * x[a]) / c
            x[a] = c * x[a] - s * Lf[i + a, kk]
    for c in range(M):  # the old last row/column is no longer part of the factor
        Lf[M - 1, c] = 0.0
        Lf[c, M - 1] = 0.0


@njit(cache=True)
def _small_spd_solve(G: np.ndarray, k: int, rhs: np.ndarray) -> None:
    """Solve the leading k x k block of the SPD matrix G in place of rhs (Gauss, no pivots)."""
    for c in range(k):
        for a in range(c + 1, k):
            f = G[a, c] / G[c, c]
            for b in range(c, k):
                G[a, b] -= f * G[c, b]
            rhs[a] -= f * rhs[c]
    for a in range(k - 1, -1, -1):
        t = rhs[a]
        for b in range(a + 1, k):
            t -= G[a, b] * rhs[b]
        rhs[a] = t / G[a, a]


@njit(cache=True)
def _remove(
    a: int,
    m: int,
    act: np.ndarray,
    pos: np.ndarray,
    bA: np.ndarray,
    sg: np.ndarray,
    XA: np.ndarray,
    Lf: np.ndarray,
    factored: bool,
) -> None:
    """Take entry ``a`` out of the active set of size ``m`` (and out of the factor)."""
    pos[act[a]] = -1
    for c in range(a, m - 1):
        act[c] = act[c + 1]
        pos[act[c]] = c
        bA[c] = bA[c + 1]
        sg[c] = sg[c + 1]
        XA[c] = XA[c + 1]
    if factored:
        _chol_delete(Lf, m + 1, a + 1)


@njit(cache=True, nogil=True)
def solve_path(
    XT: np.ndarray,
    XT32: np.ndarray,
    cm: np.ndarray,
    cs: np.ndarray,
    cnorm: np.ndarray,
    rows: np.ndarray,
    y: np.ndarray,
    keep: np.ndarray,
    xm: np.ndarray,
    xs: np.ndarray,
    lambdas: np.ndarray,
    user: bool,
    ftol: float,
    max_iter: int,
    mnlam: int,
    fdev: float,
    devmax: float,
    fmax: float,
    pmin: float,
    vmin: float,
    a0: np.ndarray,
    beta: np.ndarray,
    dev: np.ndarray,
    counts: np.ndarray,
) -> tuple[int, int]:
    """Fit the path on the rows ``rows`` of ``XT.T``; fills the intercepts a0 (L,) and the
    coefficients beta (L, p, zero on entry), both on the original scale, and dev (L,).

    ``XT`` is the raw data transposed, (p, N) in C order, so a column is contiguous; ``XT32``
    the same centred (``cm``) and scaled (``cs``) in float32, ``cnorm`` its row norms; ``y`` (n,)
    the 0/1 labels of ``rows``; ``keep`` the non-constant columns; ``xm``/``xs`` (p,) their means
    and 1/n sds over ``rows``. Returns ``(number of lambdas kept, status)``; ``counts`` (6,)
    accumulates the work done: factorisations, full KKT products, Newton steps, variables added,
    variables dropped, single-column KKT products.
    """
    N = XT.shape[1]
    n = rows.shape[0]
    pk = keep.shape[0]
    L = lambdas.shape[0]
    cap = max(1, min(pk, n - 1))  # with the intercept at most n - 1 columns stay independent
    act = np.empty(cap, dtype=np.int64)
    pos = np.full(pk, -1, dtype=np.int64)
    bA = np.zeros(cap)
    bp = np.zeros(cap)
    sg = np.zeros(cap)
    XA = np.empty((cap, n))
    Lf = np.zeros((cap + 1, cap + 1))
    vref = np.empty(n)
    F = np.empty(cap + 1)
    d = np.empty(cap + 1)
    h = np.empty(cap + 1)
    eta = np.empty(n)
    eta_t = np.empty(n)
    deta = np.empty(n)
    prob = np.empty(n)
    r = np.empty(n)
    rfull = np.zeros(N)  # the residual scattered to all N rows (zero outside ``rows``)
    rref = np.zeros(n)
    gub = np.zeros(pk)
    r32 = np.zeros(N, dtype=np.float32)
    g = np.zeros(pk)
    cand = np.empty(pk, dtype=np.int64)
    col = np.empty(n)
    fh = np.zeros((ANDERSON, cap + 1))
    bh = np.zeros((ANDERSON, cap + 1))
    fprv = np.zeros(cap + 1)
    bprv = np.zeros(cap + 1)
    nh = 0  # Anderson history length
    Ga = np.zeros((ANDERSON, ANDERSON))
    rh = np.zeros(ANDERSON)
    prev = False  # fprv/bprv hold the previous step
    xmk = np.empty(pk)
    xsk = np.empty(pk)
    for j in range(pk):
        xmk[j] = xm[keep[j]]
        xsk[j] = xs[keep[j]]
    have_ref = False

    ybar = y.mean()
    dev0 = -(np.log(ybar / (1 - ybar)) * ybar + np.log(1 - ybar))
    b0 = np.log(ybar / (1 - ybar))
    m = 0
    for i in range(n):
        eta[i] = b0
    _probs(eta, prob)
    factored = False  # Lf holds a factor of size m + 1 (at weights vref)
    last = L
    for k in range(L):
        lam = lambdas[k]
        if not (k == 0 and not user):  # lambda_max itself: the intercept-only model
            it = 0
            fprev = np.inf
            since = 0
            prev = False  # the Anderson history continues, but not across the change of lambda
            level = max(LOOSE, ftol)  # residual (relative to lambda) of the next KKT check
            while True:
                it += 1
                if it > max_iter:
                    return k, FAIL
                for i in range(n):
                    r[i] = y[i] - prob[i]
                F[0] = r.sum() / n
                fm = abs(F[0])
                if m > 0:
                    gA = np.dot(XA[:m], r)
                    for a in range(m):
                        F[a + 1] = gA[a] / n - lam * sg[a]
                        fm = max(fm, abs(F[a + 1]))
                tight = fm <= ftol * lam
                if fm <= level * lam:
                    # KKT for the columns outside A: g_j = x_std_j' r / n. ``gub`` holds upper
                    # bounds of |g_j| at the residual ``rref``; the standardised columns have
                    # norm sqrt(n), so |g_j| <= gub_j + ||r - rref|| / sqrt(n) now, and only the
                    # columns that bound lets reach lambda need their exact product.
                    for i in range(n):
                        rfull[rows[i]] = r[i]
                    sr = r.sum()
                    # before the final check only clear violators join (margin: the residual)
                    thr = lam * (1.0 + 1e-9) + (0.0 if tight else 10.0 * fm)
                    ncand = 0
                    full = not have_ref
                    if have_ref:
                        dr2 = 0.0
                        for i in range(n):
                            dr2 += (r[i] - rref[i]) ** 2
                        delta = np.sqrt(dr2 / n) * (1.0 + 1e-8) + 1e-13 * lam
                        for j in range(pk):
                            if pos[j] < 0 and gub[j] + delta > thr:
                                cand[ncand] = j
                                ncand += 1
                        full = ncand > pk // FULL_KKT_FRACTION
                    if full:
                        # All columns in float32 (half the memory traffic of this, the largest
                        # product), each with a rigorous rounding bound: |error| <= (N + 4) u
                        # ||x32_j|| ||r|| (u = 2^-24) on the centred, scaled copy ``XT32``.
                        counts[1] += 1
                        rn = 0.0
                        for i in range(N):
                            r32[i] = rfull[i]
                            rn += rfull[i] * rfull[i]
                        rn = np.sqrt(rn)
                        g32 = np.dot(XT32, r32)
                        gam = (N + 4.0) * 2.0**-24 * 1.01
                        ncand = 0
                        for j in range(pk):
                            jr = keep[j]
                            den = xsk[j] * n
                            ga = (cs[jr] * g32[jr] - (xmk[j] - cm[jr]) * sr) / den
                            err = gam * cs[jr] * cnorm[jr] * rn / den + 1e-15 * lam
                            gub[j] = abs(ga) + err
                            if pos[j] < 0 and gub[j] > thr:
                                cand[ncand] = j
                                ncand += 1
                        rref[:] = r
                        have_ref = True
                    for c in range(ncand):
                        j = cand[c]
                        g[j] = (_dot(XT[keep[j]], rfull) - xmk[j] * sr) / (xsk[j] * n)
                    counts[5] += ncand
                    nviol = 0
                    best = 0.0
                    for c in range(ncand):
                        j = cand[c]
                        if abs(g[j]) > thr:
                            cand[nviol] = j
                            nviol += 1
                            best = max(best, abs(g[j]))
                    if nviol == 0:
                        if tight:
                            break
                        # no clear violator at this residual: look again at a smaller one,
                        # so that marginal violators join before A is solved to the end
                        level = max(level * 1e-3, ftol)
                    if not factored:
                        for i in range(n):
                            vref[i] = prob[i] * (1.0 - prob[i]) / n
                        if not _factor(XA, m, vref, Lf):
                            return k, FAIL
                        factored = True
                        counts[0] += 1
                    # Violators join largest first, those within half of the largest violation
                    # together (at most MAX_ADD a round).
                    added = 0
                    while added < MAX_ADD:
                        cb = -1
                        gb = thr
                        for c in range(nviol):
                            if abs(g[cand[c]]) > gb:
                                gb = abs(g[cand[c]])
                                cb = c
                        if cb < 0 or gb < 0.5 * best + 0.5 * lam:
                            break
                        jb = cand[cb]
                        cand[cb] = cand[nviol - 1]
                        nviol -= 1
                        if m >= cap:
                            return k, FAIL
                        x = XT[keep[jb]]
                        for i in range(n):
                            col[i] = (x[rows[i]] - xmk[jb]) / xsk[jb]
                        # new Hessian column at the factor's weights
                        s0 = 0.0
                        sd = 0.0
                        for i in range(n):
                            w = vref[i] * col[i]
                            s0 += w
                            sd += w * col[i]
                            deta[i] = w
                        h[0] = s0
                        if m > 0:
                            h[1 : m + 1] = np.dot(XA[:m], deta)
                        if not _chol_append(Lf, m + 1, h, sd):
                            continue
                        XA[m] = col
                        act[m] = jb
                        pos[jb] = m
                        bA[m] = 0.0
                        sg[m] = 1.0 if g[jb] > 0 else -1.0
                        m += 1
                        added += 1
                        counts[3] += 1
                    if added == 0 and nviol > 0:
                        return k, FAIL
                    if added > 0:
                        fprev = np.inf
                        nh = 0
                        prev = False
                        continue
                if not factored or (since >= MIN_CHORD and fm > SLOW * fprev):
                    for i in range(n):
                        vref[i] = prob[i] * (1.0 - prob[i]) / n
                    if not _factor(XA, m, vref, Lf):
                        return k, FAIL
                    factored = True
                    since = 0
                    counts[0] += 1
                    nh = 0
                    prev = False
                fprev = fm
                since += 1
                counts[2] += 1
                _chol_solve(Lf, m + 1, F, d)
                # Anderson acceleration of the chord iteration beta <- beta + d (memory ANDERSON):
                # mix the last steps so that their residual changes cancel. The history restarts
                # when the factor or the active set changes or a step is cut; a new lambda only
                # shifts the map by a constant, which differences of steps do not see.
                M1 = m + 1
                if prev:
                    for c in range(ANDERSON - 1, 0, -1):
                        fh[c, :M1] = fh[c - 1, :M1]
                        bh[c, :M1] = bh[c - 1, :M1]
                    fh[0, :M1] = d[:M1] - fprv[:M1]
                    bh[0, 0] = b0 - bprv[0]
                    for a in range(m):
                        bh[0, a + 1] = bA[a] - bprv[a + 1]
                    nh = min(nh + 1, ANDERSON)
                prev = True
                fprv[:M1] = d[:M1]
                bprv[0] = b0
                bprv[1:M1] = bA[:m]
                if nh > 0:
                    for u in range(nh):
                        rh[u] = _dot(fh[u, :M1], d[:M1])
                        for w2 in range(u + 1):
                            Ga[u, w2] = _dot(fh[u, :M1], fh[w2, :M1])
                            Ga[w2, u] = Ga[u, w2]
                    tr = 0.0
                    for u in range(nh):
                        tr += Ga[u, u]
                    for u in range(nh):
                        Ga[u, u] += 1e-10 * tr
                    _small_spd_solve(Ga, nh, rh)
                    for u in range(nh):
                        for a in range(M1):
                            d[a] -= rh[u] * (bh[u, a] + fh[u, a])
                for i in range(n):
                    deta[i] = d[0]
                if m > 0:
                    deta += np.dot(d[1 : m + 1], XA[:m])
                # zero crossings along the step; the first one limits a truncated step
                tc = np.inf
                ic = -1
                ncross = 0
                for a in range(m):
                    nb = bA[a] + d[a + 1]
                    if nb * sg[a] <= 0.0:
                        ncross += 1
                        t = bA[a] / (-d[a + 1])
                        if t < tc:
                            tc = t
                            ic = a
                l1 = 0.0
                dl1 = 0.0
                for a in range(m):
                    l1 += sg[a] * bA[a]
                    dl1 += sg[a] * d[a + 1]
                if ncross > 0:
                    # Projected Newton first: the full step with the crossing coefficients set
                    # to zero, all of them dropped at once, if it lowers the objective. Else
                    # the step stops at the first crossing (feature-sign search).
                    j0 = _loss(y, eta) / n + lam * l1
                    lp = 0.0
                    for a in range(m):
                        nb = bA[a] + d[a + 1]
                        bp[a] = nb if nb * sg[a] > 0.0 else 0.0
                        lp += abs(bp[a])
                    for i in range(n):
                        eta_t[i] = b0 + d[0]
                    eta_t += np.dot(bp[:m], XA[:m])
                    if _loss(y, eta_t) / n + lam * lp <= j0 + 1e-13 * abs(j0):
                        b0 += d[0]
                        for a in range(m - 1, -1, -1):
                            bA[a] = bp[a]
                            if bp[a] == 0.0:
                                _remove(a, m, act, pos, bA, sg, XA, Lf, factored)
                                m -= 1
                                counts[4] += 1
                        eta[:] = eta_t
                        _probs(eta, prob)
                        nh = 0
                        prev = False
                        fprev = np.inf
                        continue
                alpha = 1.0
                big = 0.0
                for i in range(n):
                    big = max(big, abs(deta[i]))
                # Backtracking guards large steps only: for a small change of the linear
                # predictor the quadratic model is accurate and the step a descent direction.
                j0 = _loss(y, eta) / n + lam * l1 if big > SMALL_STEP else 0.0
                while big > SMALL_STEP:
                    for i in range(n):
                        eta_t[i] = eta[i] + alpha * deta[i]
                    jt = _loss(y, eta_t) / n + lam * (l1 + alpha * dl1)
                    if jt <= j0 + 1e-13 * abs(j0):
                        break
                    alpha *= 0.5
                    if alpha < 1e-10:
                        return k, FAIL
                if alpha < 1.0:
                    factored = False  # the factor is too stale (or we are far): refresh it
                t = alpha
                if ic >= 0 and tc <= alpha:
                    t = tc
                if t < 1.0:
                    nh = 0
                    prev = False
                b0 += t * d[0]
                for a in range(m):
                    bA[a] += t * d[a + 1]
                if t == tc and ic >= 0:
                    # the crossing variable leaves the active set
                    counts[4] += 1
                    _remove(ic, m, act, pos, bA, sg, XA, Lf, factored)
                    m -= 1
                    for i in range(n):
                        eta[i] = b0
                    if m > 0:
                        eta += np.dot(bA[:m], XA[:m])
                    fprev = np.inf
                else:
                    for i in range(n):
                        eta[i] += t * deta[i]
                _probs(eta, prob)
            # exact linear predictor for the record
            for i in range(n):
                eta[i] = b0
            if m > 0:
                eta += np.dot(bA[:m], XA[:m])
            _probs(eta, prob)
            # Two 1-D Newton steps on the (unpenalised) intercept: sum(y - p) = 0 to rounding
            # for a few products of n, where the joint tolerance leaves up to ftol * lambda.
            for _ in range(2):
                sr = 0.0
                sv = 0.0
                for i in range(n):
                    sr += y[i] - prob[i]
                    sv += prob[i] * (1.0 - prob[i])
                if sv <= 0.0:
                    break
                b0 += sr / sv
                for i in range(n):
                    eta[i] += sr / sv
                _probs(eta, prob)
        # coefficients on the original scale of the columns
        c0 = b0
        for a in range(m):
            ja = act[a]
            coef = bA[a] / xsk[ja]
            beta[k, keep[ja]] = coef
            c0 -= coef * xmk[ja]
        a0[k] = c0
        # glmnet's deviance and saturation with its clipping of the fitted probabilities
        dv = 0.0
        sv = 0.0
        for i in range(n):
            e = eta[i]
            q = 0.0 if e < -fmax else (1.0 if e > fmax else prob[i])
            sv += q * (1.0 - q)
            qc = min(max(q, pmin), 1.0 - pmin)
            dv -= y[i] * np.log(qc) + (1.0 - y[i]) * np.log(1.0 - qc)
        dev[k] = (dev0 - dv / n) / dev0
        if sv / n <= vmin:
            last = k + 1
            break
        if user or k + 1 < min(mnlam, L):
            continue
        if dev[k] > devmax or (k > 0 and dev[k] - dev[k - 1] < fdev):
            last = k + 1
            break
    return last, OK
