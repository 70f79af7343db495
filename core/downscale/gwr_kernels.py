"""Local weighted least squares of geographically weighted regression (GWR).

One local fit per regression point ``i`` (coarse cell centre):
``beta_i = (X' W_i X)^-1 X' W_i y`` with ``W_i = diag(K(d_ij / bw))``, where ``K`` is the
Gaussian kernel ``exp(-z^2/2)`` or the bisquare ``(1 - z^2)^2`` (0 for ``z >= 1``) and
``bw = inf`` gives equal weights (global least squares). Matrices are inverted through a
Cholesky factorisation; where a local matrix is singular (a predictor locally constant,
e.g. a flat DEM over a delta, or collinear) the slopes are ridge-penalised
(``X'WX + RIDGE sum(w) I`` without the intercept) and the fit retried; only what is still
singular (fewer neighbours with a weight than parameters) returns NaN.

Gaussian weights below ``eps`` (``GAUSS_EPS`` = 1e-12 unless a caller asks otherwise; 0
keeps every weight that does not underflow) are dropped. The dropped kernel mass of a
location is about ``eps`` relative to the kept one (locations spread in the plane), so
every local weighted sum moves by a relative ~eps and the coefficients by ~eps times the
local matrix's conditioning: at 1e-12 they equal the untruncated ones to 1e-9 (tested),
far inside the 1e-6 agreement with ``mgwr``; the AICc bound is in :mod:`.gwr`. Those
weights (every truncation from ``eps`` ~ 7e-13 up) are a polynomial, not libm's ``exp``
(:func:`gauss_weight_poly`, 2e-14 relative to it): the compiled weight loop then runs on
vector instructions, which halves the time of a local-fit pass at China size (the
exponential was half of it); the numpy fallback evaluates the same polynomial.

Each kernel comes as a numba implementation and a numpy fallback (chunks of regression
points against every observation, batched linear algebra) that give the same numbers to
rounding. The numba fit sorts observations and regression points into square bins (a
quarter of the kernel's reach, at least ~``TILE_LOCATIONS`` points each) and runs one
``prange`` loop over bins: a bin's locations against the columns of each bin row within
the kernel's reach of them give a small dense weight matrix, multiplied by that row's
contiguous block of packed products ``x_a x_c, x_a y`` (BLAS), then each location's
matrix is inverted. With ``bw = inf``
every local fit is the global least-squares fit, computed once.
"""

from __future__ import annotations

import math

import numpy as np

from ..accel import kernel, njit, prange

GAUSSIAN = 0
BISQUARE = 1
#: Gaussian weights below this are treated as 0 in every fit (see the module docstring for
#: the error bound), and the squared kernel argument where that happens
GAUSS_EPS = 1e-12
GAUSS_CUT2 = 2.0 * 27.631021115928547  # -2 ln(GAUSS_EPS)
#: locations per bin aimed at (bins are at least this large)
TILE_LOCATIONS = 4
#: squared kernel argument where ``exp(-z^2/2)`` is below 1e-304 (near the double underflow)
UNDERFLOW_Z2 = 1400.0
#: relative pivot below which a local matrix counts as singular
PIVOT_TOL = 1e-10
#: ridge added to the slopes' diagonal of a singular local matrix, relative to the sum of
#: the local weights (the predictors are standardised: a prior sd of ~30 standard units
#: on a coefficient, negligible where the data determine it). It enters ``(X'WX)^-1`` and
#: so the hat matrix, the AICc and the standard errors.
RIDGE = 1e-3
#: relative pivot below which a local matrix is treated as collinear and ridge-penalised
#: (1 - local R^2 of a standardised predictor on the others; well above rounding, far
#: below any fit that the data determine, so well-posed fits equal mgwr's)
RIDGE_PIVOT = 1e-7
#: largest squared kernel argument ``z^2`` whose Gaussian weight comes from
#: :func:`gauss_weight_poly` (every truncation from ``eps`` ~ 7e-13 up, the default and
#: the search's coarser levels); beyond it (no truncation, ``eps = 0``) libm's ``exp``
POLY_Z2_MAX = 56.0
#: centre of the Taylor polynomial of :func:`gauss_weight_poly` and ``exp(-centre)``
_POLY_CENTRE = 0.2163
_POLY_EXP_CENTRE = math.exp(-_POLY_CENTRE)


def gauss_weight_poly(z2):
    """``exp(-z2 / 2)`` for ``0 <= z2 <= POLY_Z2_MAX`` (a float or an array) as
    ``(exp(-z2 / 128))^64``, the inner factor a degree-13 Taylor polynomial around
    ``-_POLY_CENTRE`` (its argument stays within 0.217 of it: truncation error below
    1e-20). Relative error against libm below 2e-14 (tested): the 64th power multiplies the
    polynomial's rounding. Only multiplications and additions, so a compiled loop over
    pairs runs 4 lanes at a time (about 4 x faster than calling ``exp``), and numpy
    evaluates the same operations in the same order: both paths give the same bits."""
    t = z2 * -0.0078125 + _POLY_CENTRE
    p = t * (1.0 / 6227020800.0) + 1.0 / 479001600.0
    p = p * t + 1.0 / 39916800.0
    p = p * t + 1.0 / 3628800.0
    p = p * t + 1.0 / 362880.0
    p = p * t + 1.0 / 40320.0
    p = p * t + 1.0 / 5040.0
    p = p * t + 1.0 / 720.0
    p = p * t + 1.0 / 120.0
    p = p * t + 1.0 / 24.0
    p = p * t + 1.0 / 6.0
    p = p * t + 0.5
    p = p * t + 1.0
    p = p * t + 1.0
    y = p * _POLY_EXP_CENTRE
    y = y * y
    y = y * y
    y = y * y
    y = y * y
    y = y * y
    return y * y


def kernel_code(name: str) -> int:
    """0 for ``"gaussian"``, 1 for ``"bisquare"``."""
    name = str(name).lower()
    if name == "gaussian":
        return GAUSSIAN
    if name == "bisquare":
        return BISQUARE
    raise ValueError(f"Unknown GWR kernel {name!r}; choose 'gaussian' or 'bisquare'")


# ---------------------------------------------------------------------------------------
# numba
# ---------------------------------------------------------------------------------------


def _chol_inverse_nb(M, out, tol, L, Li):  # pragma: no cover - compiled
    """Inverse of a small SPD matrix via Cholesky into ``out`` (``L``, ``Li``: scratch of the
    same shape); False when singular."""
    p = M.shape[0]
    L[:] = 0.0
    for j in range(p):
        s = M[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not (s > tol * abs(M[j, j])) or not (M[j, j] > 0):
            return False
        L[j, j] = np.sqrt(s)
        for i in range(j + 1, p):
            t = M[i, j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / L[j, j]
    # Linv: lower triangular inverse by forward substitution
    Li[:] = 0.0
    for j in range(p):
        Li[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, p):
            t = 0.0
            for k in range(j, i):
                t -= L[i, k] * Li[k, j]
            Li[i, j] = t / L[i, i]
    for a in range(p):
        for b in range(p):
            t = 0.0
            for k in range(max(a, b), p):
                t += Li[k, a] * Li[k, b]
            out[a, b] = t
    return True


def _gauss_row_nb(ox, oy, xi, yi, bw2, cut2, out):  # pragma: no cover - compiled
    """Gaussian weights of the observations at ``ox, oy`` (contiguous, ``(m,)``) at
    ``(xi, yi)`` into ``out[:m]`` (0 beyond ``z^2 = cut2 <= POLY_Z2_MAX``); returns how
    many are kept. A branch-free loop from index 0 (no negative-index checks): compiled to
    vector instructions."""
    c = 0
    for j in range(ox.size):
        dx = ox[j] - xi
        dy = oy[j] - yi
        z2 = (dx * dx + dy * dy) / bw2
        keep = z2 <= cut2
        w = _gauss_poly(z2 if keep else cut2)
        out[j] = w if keep else 0.0
        c += keep
    return c


def _tile_fits_nb(ox, oy, Z, Z2, loc_xy, lorder, loc_start, starts, x0, y0, h, nbx, nby, radius, bw, kern, cut2, want_cov,
                  p):  # pragma: no cover - compiled
    """Weighted sums ``A = sum_j w_ij Z_j`` (and ``A2 = sum_j w_ij^2 Z2_j``) and the number of
    weighted neighbours at locations sorted into the same square bins (side ``h``, origin
    ``x0, y0``) as the observations (``lorder``: the locations' order by bin, rows of
    ``loc_xy`` and of the results; ``loc_start``/``starts``: first location/observation
    of each row-major bin). One tile (bin) of locations at a time: each bin row that comes
    within ``radius`` of the tile's locations is scanned over the columns within reach;
    the weights form a small dense matrix, multiplied by the row's contiguous block of
    ``Z`` (BLAS); then each location's fit (:func:`_solve_one`), all in one parallel loop."""
    m = loc_xy.shape[0]
    q = Z.shape[1]
    tri = Z2.shape[1]
    beta = np.full((m, p), np.nan)
    minv = np.full((m, p, p), np.nan)
    cov = np.full((m, p, p), np.nan) if want_cov else np.full((1, p, p), np.nan)
    bw2 = bw * bw
    r2 = radius * radius
    for b in prange(nbx * nby):
        l0 = loc_start[b]
        l1 = loc_start[b + 1]
        if l1 == l0:
            continue
        mt = l1 - l0
        # the tile's locations' box (a location outside the observations' box is binned
        # into an edge bin, so the bin's own square is not a bound)
        xa = loc_xy[lorder[l0], 0]
        xb = xa
        ya = loc_xy[lorder[l0], 1]
        yb = ya
        for a in range(1, mt):
            li = lorder[l0 + a]
            xa = min(xa, loc_xy[li, 0])
            xb = max(xb, loc_xy[li, 0])
            ya = min(ya, loc_xy[li, 1])
            yb = max(yb, loc_xy[li, 1])
        acc = np.zeros((mt, q))
        acc2 = np.zeros((mt if want_cov else 1, tri))
        cnt = np.zeros(mt, dtype=np.int64)
        work = np.empty((6, p, p))
        ry0 = int(max(min(np.floor((ya - radius - y0) / h), nby), 0.0))
        ry1 = int(max(min(np.floor((yb + radius - y0) / h), nby - 1.0), -1.0))
        for yy in range(ry0, ry1 + 1):
            band = y0 + yy * h
            g = max(0.0, band - yb, ya - band - h)  # the row's distance from the box
            hr = math.sqrt(max(r2 - g * g, 0.0))
            bx0 = int(max(min(np.floor((xa - hr - x0) / h), nbx), 0.0))
            bx1 = int(max(min(np.floor((xb + hr - x0) / h), nbx - 1.0), -1.0))
            if bx1 < bx0:
                continue
            s = starts[yy * nbx + bx0]
            e = starts[yy * nbx + bx1 + 1]
            if e == s:
                continue
            hits = 0
            W = np.empty((mt, e - s))
            for a in range(mt):
                xi = loc_xy[lorder[l0 + a], 0]
                yi = loc_xy[lorder[l0 + a], 1]
                c = 0
                if kern == 0 and cut2 <= POLY_Z2_MAX:
                    c = _gauss_row(ox[s:e], oy[s:e], xi, yi, bw2, cut2, W[a])
                elif kern == 0:
                    for j in range(s, e):
                        dx = ox[j] - xi
                        dy = oy[j] - yi
                        z2 = (dx * dx + dy * dy) / bw2
                        w = 0.0
                        if z2 <= cut2:
                            w = np.exp(-0.5 * z2)
                            c += 1
                        W[a, j - s] = w
                else:
                    for j in range(s, e):
                        dx = ox[j] - xi
                        dy = oy[j] - yi
                        z2 = (dx * dx + dy * dy) / bw2
                        w = 0.0
                        if z2 < 1.0:
                            t = 1.0 - z2
                            w = t * t
                            c += 1
                        W[a, j - s] = w
                cnt[a] += c
                hits += c
            if hits == 0:
                continue
            if 8 * hits >= mt * (e - s):  # at least 1/8 of the pairs weighted: one matrix product (BLAS)
                acc += np.dot(W, Z[s:e])
                if want_cov:
                    acc2 += np.dot(W * W, Z2[s:e])
            else:  # few locations or sparse weights: accumulate the weighted rows
                for a in range(mt):
                    for j in range(s, e):
                        w = W[a, j - s]
                        if w == 0.0:
                            continue
                        for t in range(q):
                            acc[a, t] += w * Z[j, t]
                        if want_cov:
                            w2 = w * w
                            for t in range(tri):
                                acc2[a, t] += w2 * Z2[j, t]
        for a in range(mt):
            _solve_one(acc[a], acc2[a] if want_cov else acc2[0], cnt[a], p, want_cov, beta, minv, cov, lorder[l0 + a], work)
    return beta, minv, cov


def _solve_one_nb(Ai, A2i, sup_i, p, want_cov, beta, minv, cov, i, work):  # pragma: no cover - compiled
    """Unpack one location's packed sums, invert ``X'WX`` (ridge when singular), and write
    ``beta``, ``(X'WX)^-1`` and the sandwich covariance into row ``i`` (``work (6,p,p)``:
    scratch)."""
    tri = p * (p + 1) // 2
    M = work[0]
    M2 = work[1]
    Mi = work[2]
    T = work[3]
    t = 0
    for a in range(p):
        for c in range(a, p):
            M[a, c] = Ai[t]
            M[c, a] = Ai[t]
            if want_cov:
                M2[a, c] = A2i[t]
                M2[c, a] = A2i[t]
            t += 1
    if not _chol_inverse(M, Mi, RIDGE_PIVOT, work[4], work[5]):
        if sup_i >= p:  # a locally constant or collinear predictor: ridge-penalise the slopes
            lam = RIDGE * M[0, 0]
            for a in range(1, p):
                M[a, a] += lam
        if not _chol_inverse(M, Mi, PIVOT_TOL, work[4], work[5]):  # fewer neighbours than parameters: no fit
            return
    for a in range(p):
        s = 0.0
        for c in range(p):
            s += Mi[a, c] * Ai[tri + c]
        beta[i, a] = s
        for c in range(p):
            minv[i, a, c] = Mi[a, c]
    if want_cov:
        for a in range(p):
            for c in range(p):
                s = 0.0
                for d in range(p):
                    s += Mi[a, d] * M2[d, c]
                T[a, c] = s
        for a in range(p):
            for c in range(p):
                s = 0.0
                for d in range(p):
                    s += T[a, d] * Mi[d, c]
                cov[i, a, c] = s


_gauss_poly = njit(inline=True)(gauss_weight_poly)
_gauss_row = njit()(_gauss_row_nb)
_chol_inverse = njit()(_chol_inverse_nb)
_solve_one = njit()(_solve_one_nb)
if _chol_inverse is not None:  # the compiled fits call the compiled helpers by these names
    _tile_fits = njit(parallel=True)(_tile_fits_nb)
else:  # pragma: no cover - without numba
    _tile_fits = None


def cutoff2(eps: float) -> float:
    """Squared Gaussian kernel argument ``z^2 = d^2/bw^2`` beyond which weights
    ``exp(-z^2/2) < eps`` are dropped (``eps <= 0``: only weights that underflow, below
    ``exp(-UNDERFLOW_Z2/2)`` ~ 1e-304, i.e. no truncation)."""
    return -2.0 * math.log(eps) if eps > 0 else UNDERFLOW_Z2


def kernel_radius(bw: float, kern: int, eps: float) -> float:
    """Distance beyond which the (truncated) kernel weight is 0 (same units as ``bw``)."""
    if not np.isfinite(bw):
        return math.inf
    return bw * math.sqrt(cutoff2(eps)) if kern == GAUSSIAN else bw


def pack_products(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per observation the products ``x_a x_c`` (``a <= c``, row-major) then ``x_a y``:
    ``(n, p(p+1)/2 + p)``, so the local sums are one weighted sum of rows."""
    a, c = np.triu_indices(X.shape[1])
    return np.ascontiguousarray(np.concatenate([X[:, a] * X[:, c], X * y[:, None]], axis=1))


def neighbour_bins(obs_xy: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, float, float, float, int, int, int]:
    """Square bins for fixed-radius neighbour queries: ``order`` (observations sorted by
    row-major bin), ``starts (nbx*nby+1,)``, origin ``x0, y0``, side ``h``, ``nbx, nby`` and
    the reach in bins (``radius`` capped at what covers every observation)."""
    lo = obs_xy.min(axis=0)
    hi = obs_xy.max(axis=0)
    ext = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-9))
    n = obs_xy.shape[0]
    reach = min(radius, 2.0 * ext + 1.0)
    # side: a quarter of the reach (a tile scans (2.25 r)^2 for a disc of pi r^2), and
    # about TILE_LOCATIONS locations per bin (so a tile's sums are one matrix product)
    area = max((hi[0] - lo[0]) * (hi[1] - lo[1]), ext * ext * 1e-6)
    h = max(reach / 4.0, math.sqrt(TILE_LOCATIONS * area / max(n, 1)), ext * 1e-6)
    nbx = int(math.floor((hi[0] - lo[0]) / h)) + 1
    nby = int(math.floor((hi[1] - lo[1]) / h)) + 1
    order, starts = bin_order(_bin_of(obs_xy, float(lo[0]), float(lo[1]), h, nbx, nby), nbx * nby)
    return order, starts, float(lo[0]), float(lo[1]), float(h), nbx, nby, int(math.ceil(reach / h))


def _bin_order_numpy(keys: np.ndarray, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    return order, np.searchsorted(keys[order], np.arange(nbins + 1)).astype(np.int64)


def _bin_order_nb(keys, nbins):  # pragma: no cover - compiled
    starts = np.zeros(nbins + 1, dtype=np.int64)
    for k in keys:
        starts[k + 1] += 1
    for b in range(nbins):
        starts[b + 1] += starts[b]
    fill = starts[:-1].copy()
    order = np.empty(keys.size, dtype=np.int64)
    for i in range(keys.size):
        order[fill[keys[i]]] = i
        fill[keys[i]] += 1
    return order, starts


_bin_order_compiled = njit()(_bin_order_nb)
_bin_order = kernel(_bin_order_compiled, _bin_order_numpy, name="gwr_bin_order")


def bin_order(keys: np.ndarray, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable sort of items by bin ``keys (n,)`` (int64 in ``[0, nbins)``): ``order (n,)``
    (what ``np.argsort(keys, kind="stable")`` gives; compiled: one counting pass) and
    ``starts (nbins + 1,)``, the first position of each bin in that order."""
    return _bin_order(np.ascontiguousarray(keys, dtype=np.int64), int(nbins))


def _bin_of(xy: np.ndarray, x0: float, y0: float, h: float, nbx: int, nby: int) -> np.ndarray:
    bx = np.clip(np.floor((xy[:, 0] - x0) / h), 0, nbx - 1).astype(np.int64)
    by = np.clip(np.floor((xy[:, 1] - y0) / h), 0, nby - 1).astype(np.int64)
    return by * nbx + bx


def _gather_packed_nb(xy, X, y, order, ox, oy, Z, Z2):  # pragma: no cover - compiled
    """Observations in ``order``: coordinates into ``ox, oy`` and the products of
    :func:`pack_products` into ``Z`` (``Z2``: its first ``p(p+1)/2`` columns), one pass."""
    p = X.shape[1]
    for r in range(order.size):
        i = order[r]
        ox[r] = xy[i, 0]
        oy[r] = xy[i, 1]
        t = 0
        for a in range(p):
            xa = X[i, a]
            for c in range(a, p):
                v = xa * X[i, c]
                Z[r, t] = v
                Z2[r, t] = v
                t += 1
        for a in range(p):
            Z[r, t + a] = X[i, a] * y[i]


_gather_packed = njit()(_gather_packed_nb)


def _local_fits_numba(obs_xy, y, X, at_xy, bw, kern, want_cov, eps):
    radius = kernel_radius(bw, kern, eps)
    order, starts, x0, y0, h, nbx, nby, _ = neighbour_bins(obs_xy, radius)
    n, p = X.shape
    tri = p * (p + 1) // 2
    ox, oy = np.empty(n), np.empty(n)
    Z, Z2 = np.empty((n, tri + p)), np.empty((n, tri))
    _gather_packed(obs_xy, X, y, order, ox, oy, Z, Z2)
    lorder, loc_start = bin_order(_bin_of(at_xy, x0, y0, h, nbx, nby), nbx * nby)
    return _tile_fits(ox, oy, Z, Z2, at_xy, lorder, loc_start, starts, x0, y0, h, nbx, nby, min(radius, 1e300), float(bw),
                      int(kern), cutoff2(eps), bool(want_cov), p)


# ---------------------------------------------------------------------------------------
# numpy
# ---------------------------------------------------------------------------------------


def weights_np(d2: np.ndarray, bw: float, kern: int, eps: float = GAUSS_EPS) -> np.ndarray:
    """Kernel weights of squared distances ``d2`` (any shape); Gaussian weights below
    ``eps`` are 0."""
    if not np.isfinite(bw):
        return np.ones_like(d2)
    z2 = d2 / (bw * bw)
    if kern == GAUSSIAN:
        cut = cutoff2(eps)
        if cut <= POLY_Z2_MAX:  # as the compiled kernel: the same polynomial, the same bits
            return np.where(z2 > cut, 0.0, gauss_weight_poly(np.minimum(z2, cut)))
        return np.where(z2 > cut, 0.0, np.exp(-0.5 * np.minimum(z2, min(cut, 2000.0) + 1)))
    t = np.where(z2 >= 1.0, 0.0, 1.0 - z2)
    return t * t


def chol_inverse_batch(M: np.ndarray, tol: float = PIVOT_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Inverses of a stack of SPD matrices ``(m, p, p)`` by Cholesky, and an ``ok`` mask
    (False where a pivot falls below ``tol`` relative to the diagonal)."""
    m, p, _ = M.shape
    L = np.zeros_like(M)
    ok = np.ones(m, dtype=bool)
    for j in range(p):
        s = M[:, j, j] - np.einsum("ik,ik->i", L[:, j, :j], L[:, j, :j])
        good = (s > tol * np.abs(M[:, j, j])) & (M[:, j, j] > 0)
        ok &= good
        L[:, j, j] = np.sqrt(np.where(good, s, 1.0))
        for i in range(j + 1, p):
            t = M[:, i, j] - np.einsum("ik,ik->i", L[:, i, :j], L[:, j, :j])
            L[:, i, j] = t / L[:, j, j]
    Li = np.zeros_like(M)
    for j in range(p):
        Li[:, j, j] = 1.0 / L[:, j, j]
        for i in range(j + 1, p):
            t = -np.einsum("ik,ik->i", L[:, i, j:i], Li[:, j:i, j])
            Li[:, i, j] = t / L[:, i, i]
    inv = np.einsum("mka,mkb->mab", Li, Li)
    inv[~ok] = np.nan
    return inv, ok


def _local_fits_numpy(obs_xy, y, X, at_xy, bw, kern, want_cov, eps, chunk_bytes=64_000_000):
    n, p = X.shape
    m = at_xy.shape[0]
    beta = np.full((m, p), np.nan)
    minv = np.full((m, p, p), np.nan)
    cov = np.full((m, p, p), np.nan) if want_cov else np.full((1, p, p), np.nan)
    step = max(1, int(chunk_bytes // (8 * max(n, 1) * 3)))
    for s in range(0, m, step):
        e = min(m, s + step)
        d2 = (at_xy[s:e, None, 0] - obs_xy[None, :, 0]) ** 2 + (at_xy[s:e, None, 1] - obs_xy[None, :, 1]) ** 2
        W = weights_np(d2, bw, kern, eps)
        M = np.einsum("in,na,nb->iab", W, X, X)
        b = np.einsum("in,na,n->ia", W, X, y)
        Mi, ok = chol_inverse_batch(M, RIDGE_PIVOT)
        if not ok.all():
            # a locally constant or collinear predictor (at least p neighbours): ridge
            bad = ~ok
            Mr = M[bad].copy()
            lam = np.where((W[bad] > 0).sum(axis=1) >= p, RIDGE * Mr[:, 0, 0], 0.0)
            for a in range(1, p):
                Mr[:, a, a] += lam
            Mi_r, ok_r = chol_inverse_batch(Mr, PIVOT_TOL)
            Mi[bad] = Mi_r
            ok[bad] = ok_r
        beta[s:e] = np.einsum("iab,ib->ia", Mi, b)
        minv[s:e] = Mi
        if want_cov:
            M2 = np.einsum("in,na,nb->iab", W * W, X, X)
            cov[s:e] = np.einsum("iab,ibc,icd->iad", Mi, M2, Mi)
        beta[s:e][~ok] = np.nan
    return beta, minv, cov


_local_fits_kernel = kernel(_local_fits_numba if _tile_fits is not None else None, _local_fits_numpy,
                            name="gwr_local_fits")


def _fit_terms_numpy(D, beta, minv, loc, predy, influ):
    predy[:] = np.einsum("np,np->n", D, beta[loc])
    influ[:] = np.einsum("na,nab,nb->n", D, minv[loc], D)


@njit(parallel=True)
def _fit_terms_numba(D, beta, minv, loc, predy, influ):  # pragma: no cover - compiled
    n, p = D.shape
    for i in prange(n):
        li = loc[i]
        s = 0.0
        q = 0.0
        for a in range(p):
            s += D[i, a] * beta[li, a]
            t = 0.0
            for b in range(p):
                t += minv[li, a, b] * D[i, b]
            q += D[i, a] * t
        predy[i] = s
        influ[i] = q


_fit_terms = kernel(_fit_terms_numba, _fit_terms_numpy, name="gwr_fit_terms")


def fit_terms(D: np.ndarray, beta: np.ndarray, minv: np.ndarray, loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per observation ``i`` of a fit at locations ``loc (n,)``: the fitted value
    ``D_i . beta[loc_i]`` and the hat diagonal ``D_i' minv[loc_i] D_i`` (without the own
    weight, 1 for every Gaussian or bisquare kernel at distance 0), ``(n,)`` each, without
    gathering the ``(n, p, p)`` matrices per observation first."""
    n = D.shape[0]
    predy, influ = np.empty(n), np.empty(n)
    _fit_terms(np.ascontiguousarray(D, dtype=np.float64), beta, minv, np.ascontiguousarray(loc, dtype=np.int64),
               predy, influ)
    return predy, influ


def local_fits(obs_xy: np.ndarray, y: np.ndarray, X: np.ndarray, at_xy: np.ndarray, bw: float, kern: int,
               want_cov: bool, eps: float = GAUSS_EPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local weighted least squares at ``at_xy``.

    ``obs_xy (n,2)``, ``y (n,)``, ``X (n,p)`` (design, intercept included), ``at_xy
    (m,2)``, ``bw`` (``inf``: equal weights), ``kern`` (:func:`kernel_code`), Gaussian
    weights below ``eps`` dropped (0: none). Returns ``beta (m,p)``, ``(X'W X)^-1
    (m,p,p)``, and when ``want_cov`` the unscaled coefficient covariance
    ``(X'WX)^-1 X'W^2X (X'WX)^-1 (m,p,p)`` (else a ``(1,p,p)`` NaN placeholder). All
    float64; NaN rows where a local fit is singular. With ``bw = inf`` every local fit is
    the global least-squares fit: it is computed once and repeated.
    """
    obs_xy = np.ascontiguousarray(obs_xy, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64).ravel()
    X = np.ascontiguousarray(X, dtype=np.float64)
    at_xy = np.ascontiguousarray(at_xy, dtype=np.float64).reshape(-1, 2)
    m = at_xy.shape[0]
    if not np.isfinite(bw) and m > 1:
        b, mi, cv = _local_fits_kernel(obs_xy, y, X, at_xy[:1], float(bw), int(kern), bool(want_cov), float(eps))
        cv = np.repeat(cv, m, axis=0) if want_cov else cv
        return np.repeat(b, m, axis=0), np.repeat(mi, m, axis=0), cv
    return _local_fits_kernel(obs_xy, y, X, at_xy, float(bw), int(kern), bool(want_cov), float(eps))


# ---------------------------------------------------------------------------------------
# applying interpolated coefficient fields at fine pixels
# ---------------------------------------------------------------------------------------


def _bilinear_corners(fr, fc, R, C):  # shared by both paths (scalar or array)
    r0 = np.floor(fr)
    c0 = np.floor(fc)
    r0 = np.minimum(np.maximum(r0, 0), max(R - 2, 0))
    c0 = np.minimum(np.maximum(c0, 0), max(C - 2, 0))
    tr = np.minimum(np.maximum(fr - r0, 0.0), 1.0) if R > 1 else fr * 0.0
    tc = np.minimum(np.maximum(fc - c0, 0.0), 1.0) if C > 1 else fc * 0.0
    return r0, c0, tr, tc


#: pixels per task of the compiled apply (its scratch arrays stay in the L2 cache)
APPLY_CHUNK = 4096


def pack_covariance(cov: np.ndarray) -> np.ndarray:
    """The upper triangle of symmetric matrices ``(..., p, p)`` row by row, off-diagonal
    entries doubled: ``(..., p(p+1)/2)``, so that ``x' C x = sum_t u_t c_t`` with
    ``u_t = x_a x_b`` over the same ``a <= b``."""
    p = cov.shape[-1]
    a, b = np.triu_indices(p)
    return np.ascontiguousarray(cov[..., a, b] * np.where(a == b, 1.0, 2.0))


def _apply_nb(X, fr, fc, coef, cpk, sigma2, out_pred, out_se, chunk):  # pragma: no cover - compiled
    """Pixels in chunks of ``chunk``; inside a chunk, each run of consecutive pixels between
    the same four nodes reads the nodes' values once and every sum is an elementwise
    (vectorised) loop over the run. Sums in the same order as :func:`_apply_numpy`."""
    m, k = X.shape
    R, C, p = coef.shape
    want_se = cpk.shape[0] == R
    for ch in prange((m + chunk - 1) // chunk):
        i0 = ch * chunk
        n = min(m, i0 + chunk) - i0
        w00 = np.zeros(n)
        w01 = np.zeros(n)
        w10 = np.zeros(n)
        w11 = np.zeros(n)
        node = np.full(n, -1, dtype=np.int64)  # row-major index of the run's upper-left node; -1: no estimate
        pr = np.zeros(n)
        q = np.zeros(n)
        for j in range(n):
            i = i0 + j
            ok = np.isfinite(fr[i]) and np.isfinite(fc[i])
            for a in range(k):
                if not np.isfinite(X[i, a]):
                    ok = False
            if not ok:
                continue
            r0 = min(max(np.floor(fr[i]), 0.0), float(max(R - 2, 0)))
            c0 = min(max(np.floor(fc[i]), 0.0), float(max(C - 2, 0)))
            tr = min(max(fr[i] - r0, 0.0), 1.0) if R > 1 else 0.0
            tc = min(max(fc[i] - c0, 0.0), 1.0) if C > 1 else 0.0
            node[j] = int(r0) * C + int(c0)
            w00[j] = (1 - tr) * (1 - tc)
            w01[j] = (1 - tr) * tc
            w10[j] = tr * (1 - tc)
            w11[j] = tr * tc
        s = 0
        while s < n:
            e = s + 1
            while e < n and node[e] == node[s]:
                e += 1
            if node[s] >= 0:
                ir = node[s] // C
                ic = node[s] - ir * C
                ir1 = min(ir + 1, R - 1)
                ic1 = min(ic + 1, C - 1)
                for a in range(p):  # x = (1, X[i]): the intercept term is the coefficient itself
                    s00 = coef[ir, ic, a]
                    s01 = coef[ir, ic1, a]
                    s10 = coef[ir1, ic, a]
                    s11 = coef[ir1, ic1, a]
                    if a == 0:
                        for j in range(s, e):
                            pr[j] += w00[j] * s00 + w01[j] * s01 + w10[j] * s10 + w11[j] * s11
                    else:
                        for j in range(s, e):
                            pr[j] += (w00[j] * s00 + w01[j] * s01 + w10[j] * s10 + w11[j] * s11) * X[i0 + j, a - 1]
                if want_se:  # x' C x = sum over a <= b of x_a x_b c_ab (off-diagonals doubled)
                    t = 0
                    for a in range(p):
                        for b in range(a, p):
                            s00 = cpk[ir, ic, t]
                            s01 = cpk[ir, ic1, t]
                            s10 = cpk[ir1, ic, t]
                            s11 = cpk[ir1, ic1, t]
                            if b == 0:
                                for j in range(s, e):
                                    q[j] += w00[j] * s00 + w01[j] * s01 + w10[j] * s10 + w11[j] * s11
                            elif a == 0:
                                for j in range(s, e):
                                    q[j] += (w00[j] * s00 + w01[j] * s01 + w10[j] * s10 + w11[j] * s11) * X[i0 + j, b - 1]
                            else:
                                for j in range(s, e):
                                    q[j] += ((w00[j] * s00 + w01[j] * s01 + w10[j] * s10 + w11[j] * s11)
                                             * (X[i0 + j, a - 1] * X[i0 + j, b - 1]))
                            t += 1
            s = e
        for j in range(n):
            if node[j] < 0:
                out_pred[i0 + j] = np.nan
                out_se[i0 + j] = np.nan
            else:
                out_pred[i0 + j] = pr[j]
                out_se[i0 + j] = np.sqrt(max(q[j] + sigma2, 0.0)) if want_se else np.nan


_apply_numba = njit(parallel=True)(_apply_nb)


def _apply_numpy(X, fr, fc, coef, cpk, sigma2, out_pred, out_se, chunk):
    # ``chunk`` (the compiled kernel's task size) is not needed here: whole arrays at once
    m, k = X.shape
    R, C, p = coef.shape
    r0, c0, tr, tc = _bilinear_corners(np.nan_to_num(fr), np.nan_to_num(fc), R, C)
    ir, ic = r0.astype(np.int64), c0.astype(np.int64)
    ir1, ic1 = np.minimum(ir + 1, R - 1), np.minimum(ic + 1, C - 1)
    w = ((1 - tr) * (1 - tc), (1 - tr) * tc, tr * (1 - tc), tr * tc)
    corners = ((ir, ic), (ir, ic1), (ir1, ic), (ir1, ic1))
    xs = np.concatenate([np.ones((m, 1)), X.astype(np.float64)], axis=1)

    def interp(field, *idx):
        return sum(wk * field[(rr, cc, *idx)] for wk, (rr, cc) in zip(w, corners))

    pred = np.zeros(m)
    for a in range(p):  # as the compiled kernel: the same terms in the same order
        pred += interp(coef, a) if a == 0 else interp(coef, a) * xs[:, a]
    bad = ~(np.isfinite(fr) & np.isfinite(fc) & np.isfinite(X).all(axis=1))
    pred[bad] = np.nan
    out_pred[:] = pred
    if cpk.shape[0] == R:
        q = np.zeros(m)
        t = 0
        for a in range(p):
            for b in range(a, p):
                c = interp(cpk, t)
                q += c if b == 0 else (c * xs[:, b] if a == 0 else c * (xs[:, a] * xs[:, b]))
                t += 1
        se = np.sqrt(np.maximum(q + sigma2, 0.0))
        se[bad] = np.nan
        out_se[:] = se
    else:
        out_se[:] = np.nan


_apply = kernel(_apply_numba, _apply_numpy, name="gwr_apply")


def apply_fields(
    X: np.ndarray, fr: np.ndarray, fc: np.ndarray, coef: np.ndarray, cov: np.ndarray | None, sigma2: float
) -> tuple[np.ndarray, np.ndarray]:
    """GWR prediction at fine pixels from coefficient fields on the coarse nodes.

    ``X (m,k)`` fine predictors, ``fr, fc (m,)`` fractional node coordinates (row, col;
    node ``(i, j)`` is the centre of coarse cell ``(i, j)``), ``coef (R,C,k+1)``
    intercept first, ``cov (R,C,k+1,k+1)`` coefficient covariance (scaled) or None.
    Coefficients are interpolated bilinearly (clamped at the edges). Returns the
    prediction and its standard error ``sqrt(sigma2 + x' Cov x)`` (NaN without ``cov``),
    float64 ``(m,)``, NaN where a predictor or position is missing.
    """
    X = np.asarray(X, dtype=np.float64)  # any layout: features come column-major (no interleaving copy)
    fr = np.ascontiguousarray(fr, dtype=np.float64)
    fc = np.ascontiguousarray(fc, dtype=np.float64)
    coef = np.ascontiguousarray(coef, dtype=np.float64)
    cpk = np.full((1, 1, 1), np.nan) if cov is None else pack_covariance(np.asarray(cov, dtype=np.float64))
    pred = np.empty(X.shape[0])
    se = np.empty(X.shape[0])
    _apply(X, fr, fc, coef, cpk, float(sigma2), pred, se, APPLY_CHUNK)
    return pred, se
