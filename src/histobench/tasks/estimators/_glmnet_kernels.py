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

Layout: the caller passes three named tuples (numba types them as records of arrays and
scalars): :class:`PathProblem` (the data), :class:`PathSettings` (tolerances and glmnet's stop
rules) and :class:`PathOutput` (the arrays filled). :func:`solve_path` runs the lambdas and
applies glmnet's stop rules; :func:`_solve_lambda` is the iteration at one lambda, each of its
steps a function below it (KKT screening, joining, Anderson mixing, sign crossings,
backtracking); the linear algebra (Cholesky factor, append, delete, solve) comes last. All state
lives in one :class:`_Workspace` of arrays allocated once per path; the scalars that change
(size of ``A``, intercept, ...) are passed in and returned, as numba cannot share them by
reference. The helpers run at every step take the few arrays they use rather than the
workspace: numba updates the reference count of every array of a tuple passed to a function.
The helpers are compiled without ``fastmath`` (except the innermost dot products and
triangular solves, as before the split), so results do not depend on how they are split.

Returns a status instead of raising: a near-singular Hessian (collinear active columns, an
active set as large as ``n``) or a stalled iteration makes the caller fall back to the numpy
reference solver. First-call compilation takes ~45 s; later processes load the cache.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import njit

OK = 0
FAIL = 1
SOLVED, JOINED, STEP = 2, 3, 4  # outcomes of a KKT round (besides FAIL)
SMALL_STEP = 0.1  # max |change of the linear predictor| below which no backtracking is done
SLOW = 0.25  # refactorise when a reused factor shrinks the residual by less than this a step
MIN_CHORD = 3  # ... after at least this many steps with it
MAX_ADD = 8  # violators added in one round
ANDERSON = 3  # memory of the Anderson acceleration of the chord iteration
FULL_KKT_FRACTION = 8  # one product over all columns once 1/8 of them are KKT candidates
LOOSE = 1e-3  # residual (relative to lambda) of the first KKT check at each lambda


class PathProblem(NamedTuple):
    """The data of one path, read-only in the solver.

    ``XT`` is the raw data transposed, (p, N) in C order, so a column is contiguous; ``XT32``
    the same centred (``cm``) and scaled (``cs``) in float32, ``cnorm`` its row norms (the KKT
    screening product over all columns runs on it). The path is fitted on the rows ``rows`` of
    ``XT.T``, whose 0/1 labels are ``y`` (n,); ``keep`` are the non-constant columns, ``xm`` and
    ``xs`` (p,) the means and 1/n sds over ``rows``. ``user``: ``lambdas`` were given by the
    caller (only saturation cuts the path) rather than computed from ``lambda_max``.
    """

    XT: np.ndarray
    XT32: np.ndarray
    cm: np.ndarray
    cs: np.ndarray
    cnorm: np.ndarray
    rows: np.ndarray
    y: np.ndarray
    keep: np.ndarray
    xm: np.ndarray
    xs: np.ndarray
    lambdas: np.ndarray
    user: bool


class PathSettings(NamedTuple):
    """Tolerances, and glmnet's constants of its stop rules and deviance."""

    ftol: float  # stationarity residual, relative to lambda, at which a lambda is solved
    max_iter: int  # iterations (steps and KKT rounds) per lambda before giving up
    mnlam: int  # glmnet: the deviance rules apply from this many lambdas on
    fdev: float  # ... stop when the deviance ratio grew by less than this
    devmax: float  # ... or exceeds this
    fmax: float  # |eta| beyond which glmnet's deviance takes the probability as 0 or 1
    pmin: float  # probabilities clipped to [pmin, 1 - pmin] in the deviance
    vmin: float  # saturation: stop when mean p (1 - p) falls to this


class PathOutput(NamedTuple):
    """What the solver fills: per lambda the intercept ``a0`` (L,), the coefficients ``beta``
    (L, p, zero on entry), both on the original scale, and the deviance ratio ``dev`` (L,);
    ``counts`` (6,) accumulates the work done: factorisations, full KKT products, Newton steps,
    variables added, variables dropped, single-column KKT products."""

    a0: np.ndarray
    beta: np.ndarray
    dev: np.ndarray
    counts: np.ndarray


class _Workspace(NamedTuple):
    """The solver's arrays, allocated once per path (n rows, N rows in all, pk kept columns,
    cap the largest active set). Kept columns are indexed 0..pk-1 (``keep`` maps them to X)."""

    # active set A: its kept columns, the position of each kept column in A (-1: outside),
    # coefficients (standardised scale), signs, standardised columns (cap, n), the Cholesky
    # factor of the Hessian of [intercept, A], and the weights p (1 - p) / n it was built at
    act: np.ndarray
    pos: np.ndarray
    bA: np.ndarray
    sg: np.ndarray
    XA: np.ndarray
    Lf: np.ndarray
    vref: np.ndarray
    # mean and 1/n sd of the kept columns over the rows
    xmk: np.ndarray
    xsk: np.ndarray
    # Newton step: stationarity residual F and step d over [intercept, A]; linear predictor,
    # its change along d, a trial predictor, probabilities, residual y - p, and the
    # coefficients of a projected step
    F: np.ndarray
    d: np.ndarray
    eta: np.ndarray
    deta: np.ndarray
    eta_t: np.ndarray
    prob: np.ndarray
    r: np.ndarray
    bp: np.ndarray
    # KKT screening: the residual on all N rows (float64 and float32), the residual and the
    # bounds of |g_j| at the last product over all columns, exact |g_j| of the candidates,
    # candidate list
    rfull: np.ndarray
    r32: np.ndarray
    rref: np.ndarray
    gub: np.ndarray
    g: np.ndarray
    cand: np.ndarray
    # a joining column (standardised) and its new Hessian row
    col: np.ndarray
    h: np.ndarray
    history: _History  # of the Anderson acceleration


class _History(NamedTuple):
    """Anderson history: step differences, iterate differences, the previous step and
    iterate, and the small normal equations of the mixing."""

    fh: np.ndarray
    bh: np.ndarray
    fprv: np.ndarray
    bprv: np.ndarray
    Ga: np.ndarray
    rh: np.ndarray


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


@njit(cache=True, nogil=True)
def solve_path(problem: PathProblem, settings: PathSettings, out: PathOutput) -> tuple[int, int]:
    """Fit the path of ``problem.lambdas`` into ``out``; returns ``(number of lambdas kept,
    status)``.

    Each lambda starts from the previous solution (active set, signs, coefficients and the
    Cholesky factor carry over); the first computed lambda is ``lambda_max``, whose solution
    is the intercept-only model. After each lambda glmnet's rules decide whether the path
    goes on, so the lambda that triggers a stop is the last one kept, as in glmnet.
    """
    y = problem.y
    L = problem.lambdas.shape[0]
    ws = _workspace(problem)
    ybar = y.mean()
    dev0 = -(np.log(ybar / (1 - ybar)) * ybar + np.log(1 - ybar))
    b0 = np.log(ybar / (1 - ybar))
    for i in range(y.shape[0]):
        ws.eta[i] = b0
    _probs(ws.eta, ws.prob)
    # (np.int64(0), np.bool_(False): not literals, for which numba would compile every callee
    # once more)
    m: Any = np.int64(0)  # size of the active set
    factored: Any = np.bool_(False)  # ws.Lf holds a factor of size m + 1 (at ws.vref)
    have_ref: Any = np.bool_(False)  # ws.gub holds KKT bounds at the residual ws.rref
    nh: Any = np.int64(0)  # Anderson history length (carries over to the next lambda)
    for k in range(L):
        if not (k == 0 and not problem.user):  # lambda_max itself: the intercept-only model
            lam = problem.lambdas[k]
            status, m, b0, factored, nh = _solve_lambda(
                problem, settings, ws, lam, m, b0, factored, have_ref, nh, out.counts
            )
            if status != OK:
                return k, FAIL
            have_ref = True  # a lambda ends with a KKT check, which leaves bounds
            b0 = _polish_intercept(y, ws, m, b0)
        _store_coefficients(problem, ws, out, k, m, b0)
        out.dev[k], saturated = _deviance_ratio(y, settings, ws, dev0)
        if saturated or _deviance_stops(settings, out.dev, k, L, problem.user):
            return k + 1, OK
    return L, OK


@njit(cache=True)
def _workspace(pb: PathProblem) -> _Workspace:
    """Allocate the solver's arrays. With the intercept at most n - 1 columns stay linearly
    independent, which bounds the active set (``cap``) and so the factor."""
    N = pb.XT.shape[1]
    n = pb.rows.shape[0]
    pk = pb.keep.shape[0]
    cap = max(1, min(pk, n - 1))
    xmk = np.empty(pk)
    xsk = np.empty(pk)
    keep = pb.keep
    for j in range(pk):
        xmk[j] = pb.xm[keep[j]]
        xsk[j] = pb.xs[keep[j]]
    return _Workspace(
        np.empty(cap, dtype=np.int64),  # act
        np.full(pk, -1, dtype=np.int64),  # pos
        np.zeros(cap),  # bA
        np.zeros(cap),  # sg
        np.empty((cap, n)),  # XA
        np.zeros((cap + 1, cap + 1)),  # Lf
        np.empty(n),  # vref
        xmk,
        xsk,
        np.empty(cap + 1),  # F
        np.empty(cap + 1),  # d
        np.empty(n),  # eta
        np.empty(n),  # deta
        np.empty(n),  # eta_t
        np.empty(n),  # prob
        np.empty(n),  # r
        np.zeros(cap),  # bp
        np.zeros(N),  # rfull: zero outside ``rows``
        np.zeros(N, dtype=np.float32),  # r32
        np.zeros(n),  # rref
        np.zeros(pk),  # gub
        np.zeros(pk),  # g
        np.empty(pk, dtype=np.int64),  # cand
        np.empty(n),  # col
        np.empty(cap + 1),  # h
        _History(
            np.zeros((ANDERSON, cap + 1)),  # fh
            np.zeros((ANDERSON, cap + 1)),  # bh
            np.zeros(cap + 1),  # fprv
            np.zeros(cap + 1),  # bprv
            np.zeros((ANDERSON, ANDERSON)),  # Ga
            np.zeros(ANDERSON),  # rh
        ),
    )


@njit(cache=True)
def _solve_lambda(
    pb: PathProblem,
    st: PathSettings,
    ws: _Workspace,
    lam: float,
    m: int,
    b0: float,
    factored: bool,
    have_ref: bool,
    nh: int,
    counts: np.ndarray,
) -> tuple[int, int, float, bool, int]:
    """Solve one lambda from the current state; returns ``(status, m, b0, factored, nh)``.

    An iteration is a KKT round (when the residual has reached the current check level) or a
    chord step on ``A``. Checking KKT early, at 1e-3, 1e-6, ... of lambda, lets clear
    violators join before ``A`` is solved to the end; the lambda is done when the residual
    is below ``ftol * lambda`` and no column violates.
    """
    # The arrays of the per-step helpers, bound once: passing a tuple of arrays to a function
    # costs two reference-count updates per array in it, which at every step of the whole
    # workspace made the solver ~8% slower.
    y, Lf, F, d, bA, sg, XA = pb.y, ws.Lf, ws.F, ws.d, ws.bA, ws.sg, ws.XA
    eta, deta, eta_t, prob, r, history = ws.eta, ws.deta, ws.eta_t, ws.prob, ws.r, ws.history
    it = 0
    fprev = np.inf  # residual before the last step (slow progress: refactorise)
    since = 0  # steps with the current factor
    prev: Any = np.bool_(False)  # the history continues, but not across the change of lambda
    level = max(LOOSE, st.ftol)  # residual (relative to lambda) of the next KKT check
    while True:
        it += 1
        if it > st.max_iter:
            return FAIL, m, b0, factored, nh
        fm = _stationarity_residual(y, prob, XA, sg, m, lam, r, F)
        if fm <= level * lam:
            outcome, m, factored, level = _kkt_round(
                pb, st, ws, lam, fm, level, m, factored, have_ref, counts
            )
            have_ref = True
            if outcome == FAIL:
                return FAIL, m, b0, factored, nh
            if outcome == SOLVED:
                return OK, m, b0, factored, nh
            if outcome == JOINED:
                fprev = np.inf
                nh = 0
                prev = False
                continue
        if not factored or (since >= MIN_CHORD and fm > SLOW * fprev):
            if not _refactor(ws, m, counts):
                return FAIL, m, b0, factored, nh
            factored = True
            since = 0
            nh = 0
            prev = False
        fprev = fm
        since += 1
        counts[2] += 1
        _chol_solve(Lf, m + 1, F, d)
        nh = _anderson_mix(history, d, bA, m, b0, nh, prev)
        prev = True
        _predictor_change(d, XA, m, deta)
        tc, ic, ncross = _first_crossing(bA, sg, d, m)
        l1, dl1 = _penalty_along_step(bA, sg, d, m)
        if ncross > 0:
            accepted, m, b0 = _projected_step(y, ws, m, b0, lam, l1, factored, counts)
            if accepted:
                nh = 0
                prev = False
                fprev = np.inf
                continue
        alpha = _backtrack(y, eta, deta, eta_t, lam, l1, dl1)
        if alpha < 1e-10:
            return FAIL, m, b0, factored, nh
        if alpha < 1.0:
            factored = False  # the factor is too stale (or we are far): refresh it
        t = alpha
        if ic >= 0 and tc <= alpha:
            t = tc  # feature-sign search: stop where the first coefficient reaches zero
        if t < 1.0:
            nh = 0
            prev = False
        b0 = _move_coefficients(d, bA, m, b0, t)
        if t == tc and ic >= 0:  # the step stopped where this coefficient reaches zero
            m = _drop_crossing(ws, ic, m, b0, factored, counts)
            fprev = np.inf
        else:
            for i in range(eta.shape[0]):
                eta[i] += t * deta[i]
        _probs(eta, prob)


@njit(cache=True)
def _stationarity_residual(
    y: np.ndarray,
    prob: np.ndarray,
    XA: np.ndarray,
    sg: np.ndarray,
    m: int,
    lam: float,
    r: np.ndarray,
    F: np.ndarray,
) -> float:
    """The residual ``r = y - p`` and the stationarity residual of the smooth problem on
    ``A``, ``F = [1 X_A]' r / n - [0, lambda s]`` (the right-hand side of the Newton step);
    returns ``max |F|``, the convergence measure."""
    n = y.shape[0]
    for i in range(n):
        r[i] = y[i] - prob[i]
    F[0] = r.sum() / n
    fm = abs(F[0])
    if m > 0:
        gA = np.dot(XA[:m], r)
        for a in range(m):
            F[a + 1] = gA[a] / n - lam * sg[a]
            fm = max(fm, abs(F[a + 1]))
    return fm


@njit(cache=True)
def _kkt_round(
    pb: PathProblem,
    st: PathSettings,
    ws: _Workspace,
    lam: float,
    fm: float,
    level: float,
    m: int,
    factored: bool,
    have_ref: bool,
    counts: np.ndarray,
) -> tuple[int, int, bool, float]:
    """A KKT check at residual ``fm``, and the violators join ``A``. Returns ``(outcome, m,
    factored, level)``, the outcome ``SOLVED`` (final check, no violator: the lambda is
    done), ``JOINED`` (``A`` grew: iterate again), ``STEP`` (nothing joined: go on with a
    step) or ``FAIL``; ``level`` is that of the next check.
    """
    tight = fm <= st.ftol * lam
    nviol, best, thr = _kkt_violators(pb, ws, lam, fm, tight, have_ref, counts)
    if nviol == 0:
        if tight:
            return SOLVED, m, factored, level
        # no clear violator at this residual: look again at a smaller one,
        # so that marginal violators join before A is solved to the end
        level = max(level * 1e-3, st.ftol)
    if not factored:
        if not _refactor(ws, m, counts):
            return FAIL, m, factored, level
        factored = True
    m, added, nviol = _add_violators(pb, ws, m, nviol, best, thr, lam, counts)
    if added < 0 or (added == 0 and nviol > 0):
        return FAIL, m, factored, level
    return (JOINED if added > 0 else STEP), m, factored, level


@njit(cache=True)
def _kkt_violators(
    pb: PathProblem,
    ws: _Workspace,
    lam: float,
    fm: float,
    tight: bool,
    have_ref: bool,
    counts: np.ndarray,
) -> tuple[int, float, float]:
    """KKT check of the columns outside ``A`` (``g_j = x_std_j' r / n``, ``|g_j| <= lambda``).

    Fills ``ws.cand[:nviol]`` with the violators and returns ``(nviol, largest |g_j|,
    threshold)``. Before the final check (``tight``) only clear violators count: the threshold
    carries a margin of the current residual, since ``g_j`` still moves by about that much.
    """
    XT, rows, keep = pb.XT, pb.rows, pb.keep
    r, rfull, cand, g, xmk, xsk = ws.r, ws.rfull, ws.cand, ws.g, ws.xmk, ws.xsk
    n = rows.shape[0]
    for i in range(n):
        rfull[rows[i]] = r[i]
    sr = r.sum()
    thr = lam * (1.0 + 1e-9) + (0.0 if tight else 10.0 * fm)
    ncand, full = _kkt_candidates(r, ws.rref, ws.pos, ws.gub, cand, lam, thr, have_ref)
    if full:
        ncand = _kkt_bounds_all_columns(pb, ws, lam, thr, sr, counts)
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
    return nviol, best, thr


@njit(cache=True)
def _kkt_candidates(
    r: np.ndarray,
    rref: np.ndarray,
    pos: np.ndarray,
    gub: np.ndarray,
    cand: np.ndarray,
    lam: float,
    thr: float,
    have_ref: bool,
) -> tuple[int, bool]:
    """The columns outside ``A`` that may have ``|g_j| > thr`` into ``cand``: ``(their number,
    whether the bounds must be renewed first)``.

    ``gub`` holds upper bounds of ``|g_j|`` at the residual ``rref``; the standardised
    columns have norm sqrt(n), so ``|g_j| <= gub_j + ||r - rref|| / sqrt(n)`` now, and only the
    columns that bound lets reach ``thr`` need their exact product. Without bounds, or when
    the bound leaves too many columns, one product over all columns renews them.
    """
    n = r.shape[0]
    pk = pos.shape[0]
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
    return ncand, full


@njit(cache=True)
def _kkt_bounds_all_columns(
    pb: PathProblem, ws: _Workspace, lam: float, thr: float, sr: float, counts: np.ndarray
) -> int:
    """Renew the bounds ``ws.gub`` of ``|g_j|`` for all columns at the current residual (now
    ``ws.rref``) and list the columns outside ``A`` whose bound exceeds ``thr``; their number.

    All columns in float32 (half the memory traffic of this, the largest product), each with
    a rigorous rounding bound: ``|error| <= (N + 4) u ||x32_j|| ||r||`` (u = 2^-24) on the
    centred, scaled copy ``XT32``.
    """
    keep, cs, cm, cnorm = pb.keep, pb.cs, pb.cm, pb.cnorm
    rfull, r32, xmk, xsk, gub, pos, cand = ws.rfull, ws.r32, ws.xmk, ws.xsk, ws.gub, ws.pos, ws.cand
    N = pb.XT.shape[1]
    n = pb.rows.shape[0]
    pk = keep.shape[0]
    counts[1] += 1
    rn = 0.0
    for i in range(N):
        r32[i] = rfull[i]
        rn += rfull[i] * rfull[i]
    rn = np.sqrt(rn)
    g32 = np.dot(pb.XT32, r32)
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
    ws.rref[:] = ws.r
    return ncand


@njit(cache=True)
def _refactor(ws: _Workspace, m: int, counts: np.ndarray) -> bool:
    """Cholesky factor of the Hessian of ``[intercept, A]`` at the current weights (kept in
    ``ws.vref``: columns that join later are appended at these weights, so the factor stays
    the factor of one matrix). False if it is not numerically positive definite."""
    prob, vref = ws.prob, ws.vref
    n = prob.shape[0]
    for i in range(n):
        vref[i] = prob[i] * (1.0 - prob[i]) / n
    if not _factor(ws.XA, m, ws.vref, ws.Lf):
        return False
    counts[0] += 1
    return True


@njit(cache=True)
def _add_violators(
    pb: PathProblem,
    ws: _Workspace,
    m: int,
    nviol: int,
    best: float,
    thr: float,
    lam: float,
    counts: np.ndarray,
) -> tuple[int, int, int]:
    """Let the violators ``ws.cand[:nviol]`` join ``A``; returns ``(m, number added,
    violators left)``, the number added -1 when ``A`` is full.

    Largest violation first, and those within half of the largest together (at most
    ``MAX_ADD`` a round): a smaller violation often vanishes once the larger ones are in. A
    column the factor refuses (in the span of ``A``) is skipped.
    """
    cand = ws.cand
    g = ws.g
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
        if m >= ws.act.shape[0]:
            return m, -1, nviol
        if not _append_column(pb, ws, m, jb):
            continue
        m += 1
        added += 1
        counts[3] += 1
    return m, added, nviol


@njit(cache=True)
def _append_column(pb: PathProblem, ws: _Workspace, m: int, jb: int) -> bool:
    """Kept column ``jb`` joins ``A`` at position ``m`` (coefficient 0, the sign of its
    gradient): its standardised values, and a new row of the factor from its Hessian column at
    the factor's weights. False, and ``A`` unchanged, if it would make the factor singular."""
    rows, col, vref = pb.rows, ws.col, ws.vref
    w_col = ws.deta  # scratch: the weighted column
    n = rows.shape[0]
    x = pb.XT[pb.keep[jb]]
    xm = ws.xmk[jb]
    xs = ws.xsk[jb]
    for i in range(n):
        col[i] = (x[rows[i]] - xm) / xs
    s0 = 0.0
    sd = 0.0
    for i in range(n):
        w = vref[i] * col[i]
        s0 += w
        sd += w * col[i]
        w_col[i] = w
    ws.h[0] = s0
    if m > 0:
        ws.h[1 : m + 1] = np.dot(ws.XA[:m], w_col)
    if not _chol_append(ws.Lf, m + 1, ws.h, sd):
        return False
    ws.XA[m] = col
    ws.act[m] = jb
    ws.pos[jb] = m
    ws.bA[m] = 0.0
    ws.sg[m] = 1.0 if ws.g[jb] > 0 else -1.0
    return True


@njit(cache=True)
def _anderson_mix(
    history: _History, d: np.ndarray, bA: np.ndarray, m: int, b0: float, nh: int, prev: bool
) -> int:
    """Anderson acceleration of the chord iteration ``beta <- beta + d`` (memory
    ``ANDERSON``): corrects the step ``d`` in place by mixing the last steps so that their
    residual changes cancel; returns the history length.

    The caller restarts the history (``nh = 0``) when the factor or the active set changes or
    a step is cut; a new lambda only shifts the map by a constant, which differences of steps
    do not see (``prev`` False: no difference to the previous step is recorded).
    """
    fh, bh, fprv, bprv, Ga, rh = history
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
    return nh


@njit(cache=True)
def _predictor_change(d: np.ndarray, XA: np.ndarray, m: int, deta: np.ndarray) -> None:
    """``deta = [1 X_A] d``: how the full step moves the linear predictor."""
    for i in range(deta.shape[0]):
        deta[i] = d[0]
    if m > 0:
        deta += np.dot(d[1 : m + 1], XA[:m])


@njit(cache=True)
def _first_crossing(
    bA: np.ndarray, sg: np.ndarray, d: np.ndarray, m: int
) -> tuple[float, int, int]:
    """The coefficients whose sign the full step flips: ``(tc, ic, count)``, where ``tc`` is
    the step fraction at which the first of them (``ic``, -1 if none) reaches zero."""
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
    return tc, ic, ncross


@njit(cache=True)
def _penalty_along_step(
    bA: np.ndarray, sg: np.ndarray, d: np.ndarray, m: int
) -> tuple[float, float]:
    """``||b_A||_1 = s' b_A`` and its change ``s' d`` along the step (linear while no sign
    flips, which is what backtracking up to the first crossing needs)."""
    l1 = 0.0
    dl1 = 0.0
    for a in range(m):
        l1 += sg[a] * bA[a]
        dl1 += sg[a] * d[a + 1]
    return l1, dl1


@njit(cache=True)
def _projected_step(
    y: np.ndarray,
    ws: _Workspace,
    m: int,
    b0: float,
    lam: float,
    l1: float,
    factored: bool,
    counts: np.ndarray,
) -> tuple[bool, int, float]:
    """Projected Newton step: the full step with the sign-crossing coefficients set to zero,
    all of them dropped at once, taken if it lowers the objective (else the caller stops at
    the first crossing: one variable leaves per step, slow when many flip). Returns
    ``(taken, m, b0)``."""
    d, bA, sg, bp, eta, eta_t = ws.d, ws.bA, ws.sg, ws.bp, ws.eta, ws.eta_t
    n = y.shape[0]
    j0 = _loss(y, eta) / n + lam * l1
    lp = 0.0
    for a in range(m):
        nb = bA[a] + d[a + 1]
        bp[a] = nb if nb * sg[a] > 0.0 else 0.0
        lp += abs(bp[a])
    for i in range(n):
        eta_t[i] = b0 + d[0]
    eta_t += np.dot(bp[:m], ws.XA[:m])
    if not (_loss(y, eta_t) / n + lam * lp <= j0 + 1e-13 * abs(j0)):
        return False, m, b0
    b0 += d[0]
    for a in range(m - 1, -1, -1):
        bA[a] = bp[a]
        if bp[a] == 0.0:
            _remove(ws, a, m, factored)
            m -= 1
            counts[4] += 1
    eta[:] = eta_t
    _probs(eta, ws.prob)
    return True, m, b0


@njit(cache=True)
def _backtrack(
    y: np.ndarray,
    eta: np.ndarray,
    deta: np.ndarray,
    eta_t: np.ndarray,
    lam: float,
    l1: float,
    dl1: float,
) -> float:
    """Step length along ``d``: halved until the objective decreases, below 1e-10 the caller
    gives up. Only a step that moves the linear predictor by more than ``SMALL_STEP`` is
    checked: for a smaller change the quadratic model is accurate and the step a descent
    direction, so the full step (length 1) saves the loss evaluations."""
    n = y.shape[0]
    alpha = 1.0
    big = 0.0
    for i in range(n):
        big = max(big, abs(deta[i]))
    j0 = _loss(y, eta) / n + lam * l1 if big > SMALL_STEP else 0.0
    while big > SMALL_STEP:
        for i in range(n):
            eta_t[i] = eta[i] + alpha * deta[i]
        jt = _loss(y, eta_t) / n + lam * (l1 + alpha * dl1)
        if jt <= j0 + 1e-13 * abs(j0):
            break
        alpha *= 0.5
        if alpha < 1e-10:
            break
    return alpha


@njit(cache=True)
def _move_coefficients(d: np.ndarray, bA: np.ndarray, m: int, b0: float, t: float) -> float:
    """Move the intercept and the coefficients of ``A`` by ``t d``; returns the intercept."""
    b0 += t * d[0]
    for a in range(m):
        bA[a] += t * d[a + 1]
    return b0


@njit(cache=True)
def _drop_crossing(
    ws: _Workspace, ic: int, m: int, b0: float, factored: bool, counts: np.ndarray
) -> int:
    """After a step cut at the first zero crossing: that variable (``ic``) leaves ``A``, and
    the linear predictor is recomputed from the coefficients rather than updated. Returns
    the new size of ``A``."""
    counts[4] += 1
    _remove(ws, ic, m, factored)
    m -= 1
    _exact_predictor(ws, m, b0)
    return m


@njit(cache=True)
def _remove(ws: _Workspace, a: int, m: int, factored: bool) -> None:
    """Take entry ``a`` out of the active set of size ``m`` (and out of the factor)."""
    act, pos, bA, sg, XA = ws.act, ws.pos, ws.bA, ws.sg, ws.XA
    pos[act[a]] = -1
    for c in range(a, m - 1):
        act[c] = act[c + 1]
        pos[act[c]] = c
        bA[c] = bA[c + 1]
        sg[c] = sg[c + 1]
        XA[c] = XA[c + 1]
    if factored:
        _chol_delete(ws.Lf, m + 1, a + 1)


@njit(cache=True)
def _exact_predictor(ws: _Workspace, m: int, b0: float) -> None:
    """``ws.eta = b0 + X_A b_A`` from the coefficients (no drift from summed updates)."""
    eta = ws.eta
    for i in range(eta.shape[0]):
        eta[i] = b0
    if m > 0:
        eta += np.dot(ws.bA[:m], ws.XA[:m])


@njit(cache=True)
def _polish_intercept(y: np.ndarray, ws: _Workspace, m: int, b0: float) -> float:
    """The exact linear predictor of the solution, then two 1-D Newton steps on the
    (unpenalised) intercept: ``sum(y - p) = 0`` to rounding for a few products of n, where the
    joint tolerance leaves up to ``ftol * lambda``. Returns the intercept."""
    n = y.shape[0]
    eta = ws.eta
    prob = ws.prob
    _exact_predictor(ws, m, b0)
    _probs(eta, prob)
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
    return b0


@njit(cache=True)
def _store_coefficients(
    pb: PathProblem, ws: _Workspace, out: PathOutput, k: int, m: int, b0: float
) -> None:
    """Intercept and coefficients of lambda ``k`` on the original scale of the columns."""
    act, bA, xmk, xsk, beta, keep = ws.act, ws.bA, ws.xmk, ws.xsk, out.beta, pb.keep
    c0 = b0
    for a in range(m):
        ja = act[a]
        coef = bA[a] / xsk[ja]
        beta[k, keep[ja]] = coef
        c0 -= coef * xmk[ja]
    out.a0[k] = c0


@njit(cache=True)
def _deviance_ratio(
    y: np.ndarray, st: PathSettings, ws: _Workspace, dev0: float
) -> tuple[float, bool]:
    """glmnet's deviance ratio of the current fit, with its clipping of the fitted
    probabilities (so that the stop rules see the numbers glmnet sees), and whether the fit
    is saturated (mean ``p (1 - p)`` down to ``vmin``: glmnet stops there)."""
    eta, prob, fmax, pmin = ws.eta, ws.prob, st.fmax, st.pmin
    n = y.shape[0]
    dv = 0.0
    sv = 0.0
    for i in range(n):
        e = eta[i]
        q = 0.0 if e < -fmax else (1.0 if e > fmax else prob[i])
        sv += q * (1.0 - q)
        qc = min(max(q, pmin), 1.0 - pmin)
        dv -= y[i] * np.log(qc) + (1.0 - y[i]) * np.log(1.0 - qc)
    return (dev0 - dv / n) / dev0, sv / n <= st.vmin


@njit(cache=True)
def _deviance_stops(st: PathSettings, dev: np.ndarray, k: int, L: int, user: bool) -> bool:
    """glmnet's truncation of a computed path after lambda ``k``: from the ``mnlam``-th
    lambda on, stop when the deviance ratio exceeds ``devmax`` or grew by less than ``fdev``.
    A user-supplied sequence (the CV folds) is not truncated by these rules."""
    if user or k + 1 < min(st.mnlam, L):
        return False
    return dev[k] > st.devmax or (k > 0 and dev[k] - dev[k - 1] < st.fdev)


# ---- numerical primitives -------------------------------------------------------------------


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
