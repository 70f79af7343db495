"""Geographically weighted regression: calibration, AICc, bandwidth search, downscaler.

``SSM_c = b0(u) + sum_k bk(u) X_k,c`` fitted at the coarse scale with kernel weights of
the distance between coarse cell centres (in the fine grid's CRS, metres). Definitions
follow Fotheringham, Brunsdon & Charlton (2002) as implemented in ``mgwr``:
``tr(S) = sum_i x_i' (X'W_iX)^-1 x_i`` (the hat matrix trace), ``sigma2 = RSS/(n - tr S)``,
``AICc = n ln(RSS/n) + n ln(2 pi) + n (n + tr S) / (n - 2 - tr S)``, coefficient covariance
``sigma2 (X'W_iX)^-1 X'W_i^2X (X'W_iX)^-1``. The bandwidth is fixed (a distance) or chosen
by golden-section search of the AICc on a log scale.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .base import CoarseData, Downscaler, FineBlock
from .gwr_kernels import GAUSS_EPS, GAUSSIAN, apply_fields, fit_terms, kernel_code, local_fits

log = logging.getLogger(__name__)

GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
#: name of the LST x NDVI cross feature, and the LST it is centred on (K; the centring
#: only conditions the fit, a linear model with both main effects spans the same space)
INTERACTION = "lst_x_ndvi"
LST_CENTRE_K = 300.0
#: a day's fit keeps only as many predictors as leave this many coarse cells per coefficient
MIN_CELLS_PER_PARAMETER = 5
#: coarser Gaussian truncations tried first when comparing two candidate bandwidths
SEARCH_EPS = (1e-3, 1e-6)
#: ... only for candidates at least this many cell spacings wide (narrower kernels have few
#: neighbours, so their exact evaluation is cheap, and few effective observations, so
#: their fits are ill-conditioned and the bound below does not hold)
SEARCH_EPS_MIN_SPACINGS = 2.0
#: the golden section hands over to Brent's parabolic steps once its interval is this
#: narrow in ln(bw) (a factor of 1.65): there the AICc is smooth and close to a parabola,
#: so a few interpolation steps replace most of the ~9 golden ones left. Parabolas need
#: values, not just comparisons, so these candidates are evaluated at the fit's truncation
#: (``eps``) directly, without the coarse levels first
REFINE_WIDTH = 0.5
#: dropping Gaussian weights below ``eps`` changes the AICc by at most ``C n eps`` for
#: bandwidths of SEARCH_EPS_MIN_SPACINGS spacings or more. The dropped kernel mass of a
#: location, relative to the kept one, is about ``eps`` for locations spread in the plane
#: (the Gaussian tail beyond ``sqrt(-2 ln eps) bw`` over a 2-D density: ``2 pi bw^2 rho
#: eps`` against ``2 pi bw^2 rho``), so every local weighted sum, RSS and tr(S) move by a
#: relative ~eps, the AICc (``n ln RSS`` and a term in tr S) by ~``n eps`` times the
#: conditioning of the local fits. Measured (tests/core/downscale/test_downscale_gwr_search.py,
#: China-sized cells): at most 1.3 ``n eps`` for well-posed fits, up to 19 where a
#: locally constant predictor is ridge-penalised (a perturbation can switch the ridge
#: on or off); C = 100 leaves a margin of five over the worst case.
AICC_TRUNCATION_C = 100.0


@dataclass
class GWRFit:
    """A calibrated GWR at its observation locations.

    ``params (n,p)`` local coefficients at each observation (intercept first), ``predy``,
    ``resid``, ``influ`` (hat diagonal) ``(n,)``, ``tr_S``, ``rss``, ``sigma2``, ``aicc``,
    ``bse (n,p)`` coefficient standard errors.
    """

    bandwidth: float
    kernel: str
    params: np.ndarray
    predy: np.ndarray
    resid: np.ndarray
    influ: np.ndarray
    tr_S: float
    rss: float
    sigma2: float
    aicc: float
    bse: np.ndarray = field(repr=False)


def _design(X: np.ndarray, constant: bool) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    return np.column_stack([np.ones(X.shape[0]), X]) if constant else X


def _unique_locations(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``coords (n,2)`` in ascending (x, y) order and each row's index among
    them: what ``np.unique(coords, axis=0, return_inverse=True)`` gives, 2-4 x faster (one
    ``lexsort`` instead of a sort of structured rows)."""
    c = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    n = c.shape[0]
    if n == 0:
        return c.copy(), np.zeros(0, dtype=np.int64)
    order = np.lexsort((c[:, 1], c[:, 0]))
    s = c[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.any(s[1:] != s[:-1], axis=1, out=new[1:])
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    return s[new], inv


def aicc_from(n: int, rss: float, tr_s: float) -> float:
    """The Gaussian AICc (inf when the effective parameters leave no degrees of freedom)."""
    if not (np.isfinite(rss) and np.isfinite(tr_s)) or n - 2.0 - tr_s <= 0 or rss <= 0:
        return math.inf
    return n * math.log(rss / n) + n * math.log(2.0 * math.pi) + n * (n + tr_s) / (n - 2.0 - tr_s)


def gwr_fit(
    coords: np.ndarray,
    y: np.ndarray,
    X: np.ndarray,
    bandwidth: float,
    kernel: str = "gaussian",
    constant: bool = True,
    eps: float = GAUSS_EPS,
) -> GWRFit:
    """Calibrate a GWR with a fixed ``bandwidth`` (same units as ``coords``; ``inf`` for
    global least squares). ``coords (n,2)``, ``y (n,)``, ``X (n,k)`` (an intercept column
    is added when ``constant``). Repeated locations (pooled days) share one local fit.
    Gaussian weights below ``eps`` are dropped (0: none)."""
    coords = np.asarray(coords, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    D = _design(X, constant)
    n, p = D.shape
    uniq, loc = _unique_locations(coords)
    beta, minv, cov = local_fits(coords, y, D, uniq, float(bandwidth), kernel_code(kernel), True, eps)
    params = beta[loc]
    predy, influ = fit_terms(D, beta, minv, loc)
    resid = y - predy
    rss = float(resid @ resid)
    tr_s = float(influ.sum())
    sigma2 = rss / (n - tr_s) if n - tr_s > 0 else math.nan
    bse = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2)[loc] * sigma2, 0.0))
    return GWRFit(float(bandwidth), kernel, params, predy, resid, influ, tr_s, rss, sigma2, aicc_from(n, rss, tr_s), bse)


def gwr_aicc(coords: np.ndarray, y: np.ndarray, X: np.ndarray, bandwidth: float, kernel: str = "gaussian",
             constant: bool = True, _uniq: tuple | None = None, eps: float = GAUSS_EPS) -> float:
    """AICc of a GWR with ``bandwidth`` (inf when any local fit is singular)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    D = _design(X, constant)
    uniq, loc = _uniq if _uniq is not None else _unique_locations(coords)
    beta, minv, _ = local_fits(np.asarray(coords, dtype=np.float64), y, D, uniq, float(bandwidth), kernel_code(kernel), False,
                               eps)
    if not np.isfinite(beta).all():
        return math.inf
    predy, influ = fit_terms(D, beta, minv, loc)
    resid = y - predy
    return aicc_from(y.size, float(resid @ resid), float(influ.sum()))


def spacing(coords: np.ndarray) -> tuple[float, float]:
    """Median nearest-neighbour distance and largest distance between distinct locations."""
    from scipy.spatial import cKDTree

    uniq, _ = _unique_locations(coords)
    if uniq.shape[0] < 2:
        return 1.0, 1.0
    d, _ = cKDTree(uniq).query(uniq, k=2)
    lo, hi = uniq.min(axis=0), uniq.max(axis=0)
    return float(np.median(d[:, 1])), float(np.hypot(*(hi - lo)))


def aicc_truncation_bound(n: int, eps: float) -> float:
    """Bound on the AICc change from dropping Gaussian weights below ``eps``:
    ``AICC_TRUNCATION_C * n * eps`` (see :data:`AICC_TRUNCATION_C`)."""
    return AICC_TRUNCATION_C * n * eps


def select_bandwidth(
    coords: np.ndarray,
    y: np.ndarray,
    X: np.ndarray,
    kernel: str = "gaussian",
    bw_min: float | None = None,
    bw_max: float | None = None,
    tol: float = 0.01,
    max_iter: int = 60,
    constant: bool = True,
    eps: float = GAUSS_EPS,
    adaptive: bool = True,
    refine: bool = True,
) -> tuple[float, float, list[tuple[float, float]]]:
    """Bandwidth minimising the AICc by golden-section search on ``ln(bw)``.

    Default interval: from half the median nearest-neighbour spacing (Gaussian) or 1.5
    spacings (bisquare) to twice the largest distance (capped at 40 spacings for more
    than 2000 locations, where a wider Gaussian is a global fit in all but name). The
    global least-squares fit (``inf``) is tried last, as ``mgwr`` does, as one least-squares
    fit. Stops when the interval is narrower than ``tol`` (relative). Returns
    ``(bw, aicc, history)``, ``history`` one ``(bw, aicc)`` per candidate in the order
    tried, each at the finest truncation it was evaluated with.

    Gaussian weights below ``eps`` are dropped (0: none). With ``adaptive`` each
    comparison of two candidates (at least :data:`SEARCH_EPS_MIN_SPACINGS` spacings wide)
    is first made with coarser truncations (:data:`SEARCH_EPS`, far fewer neighbours), and
    repeated finer only when the two AICc are closer than their truncation bounds
    (:func:`aicc_truncation_bound`); once a comparison needed a finer level the next ones
    start there (the golden section's differences only shrink). The search takes the same
    steps, and returns the same bandwidth and AICc, as with ``eps`` everywhere.

    With ``refine``, once the golden interval is narrower than :data:`REFINE_WIDTH` the
    search continues by Brent's method (parabolic interpolation through the best three
    exact AICc values, with golden steps as the safeguard) to the same tolerance: about
    half the evaluations of the golden steps it replaces, and the same local optimum to
    within ``tol`` (``refine=False`` is the plain golden section, the reference).
    """
    uniq = _unique_locations(coords)
    n = int(np.asarray(y).size)
    sp, dmax = spacing(coords)
    a = bw_min if bw_min else (0.5 if kernel == "gaussian" else 1.5) * sp
    c = bw_max if bw_max else 2.0 * dmax
    if not bw_max and uniq[0].shape[0] > 2000:
        c = min(c, 40.0 * sp)
    c = max(c, a * 1.0001)
    gaussian = kernel_code(kernel) == GAUSSIAN
    levels = tuple(e for e in SEARCH_EPS if e > eps) if (adaptive and gaussian) else ()
    levels = (*levels, eps)
    last = len(levels) - 1
    order: list[float] = []
    cache: dict[float, tuple[int, float]] = {}  # ln bw -> (level, AICc)

    def f(logbw: float, lev: int) -> tuple[int, float]:
        got = cache.get(logbw)
        if logbw < min_loose:
            lev = last
        if got is None or got[0] < lev:
            got = (lev, gwr_aicc(coords, y, X, math.exp(logbw), kernel, constant, _uniq=uniq, eps=levels[lev]))
            if logbw not in cache:
                order.append(logbw)
            cache[logbw] = got
        return got

    def slack(lev: int) -> float:
        return 0.0 if lev == last else aicc_truncation_bound(n, levels[lev])

    min_loose = math.log(SEARCH_EPS_MIN_SPACINGS * sp)

    start = [0]  # the golden section's margins only shrink: start where the last decision was made

    def first_not_worse(x1: float, x2: float) -> bool:
        """``AICc(x1) <= AICc(x2)`` as decided at the finest level."""
        lev = start[0]
        while True:
            l1, v1 = f(x1, lev)
            l2, v2 = f(x2, lev)
            exact = l1 == last and l2 == last
            if exact or (math.isfinite(v1) and math.isfinite(v2) and abs(v1 - v2) > slack(l1) + slack(l2)):
                start[0] = lev
                return v1 <= v2
            lev += 1

    lo, hi = math.log(a), math.log(c)
    x1 = hi - GOLDEN * (hi - lo)
    x2 = lo + GOLDEN * (hi - lo)
    it = 0
    while hi - lo > tol and it < max_iter and not (refine and hi - lo <= REFINE_WIDTH):
        it += 1
        if first_not_worse(x1, x2):
            hi, x2 = x2, x1
            x1 = hi - GOLDEN * (hi - lo)
        else:
            lo, x1 = x1, x2
            x2 = lo + GOLDEN * (hi - lo)
    if refine and hi - lo > tol and it < max_iter:
        _brent(lambda x: f(x, last)[1], lo, hi, x2, cache, last, tol, max_iter - it)
    else:
        f(x1, start[0])
        f(x2, start[0])
    # the best candidate at the finest level: refine every one that could still be it
    while True:
        upper = min(v + slack(lv) for lv, v in cache.values())
        could = [k for k in order if cache[k][1] - slack(cache[k][0]) <= upper or not math.isfinite(cache[k][1])]
        coarse = [k for k in could if cache[k][0] < last]
        if not coarse:
            break
        for k in coarse:
            f(k, last)
    best_lb = min(could, key=lambda k: cache[k][1])
    best_bw, best = math.exp(best_lb), cache[best_lb][1]
    history = [(math.exp(k), cache[k][1]) for k in order]
    glob = gwr_aicc(coords, y, X, math.inf, kernel, constant, _uniq=uniq, eps=eps)
    history.append((math.inf, glob))
    if glob <= best:
        best_bw, best = math.inf, glob
    return best_bw, best, history


def _brent(fx_of, a: float, b: float, x2: float, cache: dict, last: int, tol: float, max_iter: int) -> None:
    """Brent's minimisation of ``fx_of`` (the AICc of ``ln bw`` at the finest level) on
    ``[a, b]``, started from the golden section's state: the values already known at the
    finest level (``cache`` maps ``ln bw`` to ``(level, AICc)``, ``last`` that level), else
    the golden interior point ``x2``. Stops when the interval around the
    best point is narrower than ``tol``; every value it computes lands in ``cache``."""
    cgold = 1.0 - GOLDEN
    known = sorted((v, k) for k, (lv, v) in cache.items() if lv == last and a <= k <= b)
    inner = [k for _, k in known if a < k < b]
    if inner:
        x = inner[0]
        fx = cache[x][1]
    else:  # the golden interior point the next step would have compared first
        x = x2
        fx = fx_of(x)
    rest = [(v, k) for v, k in known if k != x]
    w, fw = (rest[0][1], rest[0][0]) if rest else (x, fx)
    v, fv = (rest[1][1], rest[1][0]) if len(rest) > 1 else (w, fw)
    d = 0.0
    e = b - a if len(rest) > 1 else 0.0  # three distinct points: a parabola is allowed at once
    tol1 = tol / 4.0
    tol2 = 2.0 * tol1
    for _ in range(max_iter):
        xm = 0.5 * (a + b)
        if abs(x - xm) <= tol2 - 0.5 * (b - a):
            break
        golden = True
        if abs(e) > tol1 and math.isfinite(fx) and math.isfinite(fw) and math.isfinite(fv):
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            etemp, e = e, d
            if q > 0.0 and abs(p) < abs(0.5 * q * etemp) and q * (a - x) < p < q * (b - x):
                d = p / q
                u = x + d
                if u - a < tol2 or b - u < tol2:
                    d = tol1 if xm >= x else -tol1
                golden = False
        if golden:
            e = (a - x) if x >= xm else (b - x)
            d = cgold * e
        u = x + (d if abs(d) >= tol1 else math.copysign(tol1, d))
        fu = fx_of(u)
        if fu <= fx:
            if u >= x:
                a = x
            else:
                b = x
            v, fv, w, fw, x, fx = w, fw, x, fx, u, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv, w, fw = w, fw, u, fu
            elif fu <= fv or v == x or v == w:
                v, fv = u, fu


def _nearest_fill(values: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Rows of ``values (n, ...)`` that hold NaN take the nearest complete row's values."""
    flat = values.reshape(values.shape[0], -1)
    ok = np.isfinite(flat).all(axis=1)
    if ok.all() or not ok.any():
        return values
    from scipy.spatial import cKDTree

    _, j = cKDTree(xy[ok]).query(xy[~ok])
    out = flat.copy()
    out[~ok] = flat[ok][j]
    return out.reshape(values.shape)


class GWRDownscaler(Downscaler):
    """GWR at the coarse scale, coefficient fields interpolated bilinearly to 1 km.

    Parameters
    ----------
    predictors : raw predictors used as features (those given to the driver).
    kernel : ``"gaussian"`` or ``"bisquare"``.
    bandwidth : fixed bandwidth in metres; ``None`` or 0 selects it by AICc.
    bw_min, bw_max : search interval (metres) for the AICc search; None for the defaults.
    interactions : add the LST x NDVI cross term (when both are predictors): how strongly
        the surface temperature follows soil moisture depends on the vegetation cover (bare
        soil couples LST to the surface water, a dense canopy decouples it), the basis of
        the LST-NDVI "universal triangle" regressions (Carlson et al. 1994; Chauhan et al.
        2003), whose polynomials carry the same cross term.

    Fitted attributes: ``bandwidth_`` (m, ``inf`` = global), ``aicc_``, ``sigma2_``
    (coarse residual variance), ``tr_S_``, ``n_train_``, ``coef_ (n_cells, k+1)``
    coefficients in raw predictor units (intercept first) at every coarse cell centre,
    ``cov_ (n_cells, k+1, k+1)`` their covariance, ``x_mean_``, ``x_scale_``.
    """

    method = "gwr"
    residual = "filter"
    has_uncertainty = True
    predicts_missing = True
    scale_gain = True

    def __getstate__(self) -> dict:
        """Pickled with the coefficient covariance's upper triangle only (the prediction
        reads no other part): a China-sized day's fitted state 5.4 instead of 7.3 MB on
        the run's scratch folder."""
        st = dict(self.__dict__)
        cov = st.get("cov_")
        if isinstance(cov, np.ndarray) and cov.ndim == 3 and cov.shape[1] == cov.shape[2]:
            iu = np.triu_indices(cov.shape[1])
            st["cov_"] = ("triu", cov.shape[1], np.ascontiguousarray(cov[:, iu[0], iu[1]]))
        return st

    def __setstate__(self, st: dict) -> None:
        cov = st.get("cov_")
        if isinstance(cov, tuple) and cov and cov[0] == "triu":
            _, p, packed = cov
            full = np.empty((packed.shape[0], p, p), dtype=packed.dtype)
            iu = np.triu_indices(p)
            full[:, iu[0], iu[1]] = packed
            full[:, iu[1], iu[0]] = packed
            st = dict(st, cov_=full)
        self.__dict__.update(st)

    def __init__(
        self,
        predictors: Sequence[str] = ("lst", "ndvi", "albedo", "dem"),
        kernel: str = "gaussian",
        bandwidth: float | None = None,
        bw_min: float | None = None,
        bw_max: float | None = None,
        interactions: bool = False,
    ):
        self.predictors = tuple(predictors)
        self.interactions = bool(interactions)
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.bw_min = bw_min
        self.bw_max = bw_max

    @property
    def feature_names(self) -> tuple[str, ...]:
        names = super().feature_names
        if self.interactions and "lst" in names and "ndvi" in names:
            names = (*names, INTERACTION)
        return names

    def features(self, raw) -> np.ndarray:
        if INTERACTION not in self.feature_names:
            return super().features(raw)
        names = self.feature_names
        for name in names:
            if name != INTERACTION and name not in raw:
                raise KeyError(f"predictor {name!r} is missing")
        m = np.asarray(raw["lst"]).size
        cols = np.empty((len(names), m))  # column-major, as Downscaler.features
        for a, name in enumerate(names):
            if name == INTERACTION:
                lst = np.asarray(raw["lst"], dtype=np.float64).ravel()
                ndvi = np.asarray(raw["ndvi"], dtype=np.float64).ravel()
                np.multiply(lst - LST_CENTRE_K, ndvi, out=cols[a])
            else:
                cols[a] = np.asarray(raw[name]).reshape(-1)
        return cols.T

    def fit(self, day: CoarseData, pool: Sequence[CoarseData] = ()) -> GWRDownscaler:
        kernel_code(self.kernel)  # validate early
        days = (day, *pool)
        Xs, ys, cells = [], [], []
        for d in days:
            m = d.train_mask
            Xs.append(d.X[m])
            ys.append(d.y[m])
            cells.append(np.flatnonzero(m))
        X, y, cell = np.concatenate(Xs), np.concatenate(ys), np.concatenate(cells)
        n, k = X.shape
        if n == 0:
            raise ValueError("no coarse cell with both soil moisture and predictors to fit on")
        xy = day.node_xy[cell]
        mean = X.mean(axis=0) if n else np.zeros(k)
        scale = X.std(axis=0) if n else np.ones(k)
        keep = scale > 1e-9 * np.maximum(np.abs(mean), 1.0)
        # too few cells for the model: drop the features least correlated with SSM until
        # there are at least MIN_CELLS_PER_PARAMETER cells per coefficient
        while (keep.sum() + 1) * MIN_CELLS_PER_PARAMETER > n and keep.any():
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.array([abs(np.corrcoef(X[:, j], y)[0, 1]) if n > 1 else 0.0 for j in range(k)])
            keep[np.argmin(np.where(keep, np.nan_to_num(corr, nan=0.0), np.inf))] = False
        if not keep.all():
            dropped = [nm for nm, kp in zip(day.feature_names, keep) if not kp]
            log.debug("GWR: features without variation or support dropped: %s", ", ".join(dropped))
        Z = (X[:, keep] - mean[keep]) / scale[keep]
        if self.bandwidth:
            bw = float(self.bandwidth)
            aicc = gwr_aicc(xy, y, Z, bw, self.kernel)
        elif n >= Z.shape[1] + 4:
            bw, aicc, _ = select_bandwidth(xy, y, Z, self.kernel, self.bw_min, self.bw_max)
        else:
            bw, aicc = math.inf, math.nan
        D = _design(Z, True)
        beta, minv, cov = local_fits(xy, y, D, day.node_xy, bw, kernel_code(self.kernel), True)
        bad = ~np.isfinite(beta).all(axis=1)
        if bad.all():  # bisquare too narrow everywhere, or collinear: global least squares
            log.warning("GWR: no local fit possible with bandwidth %.0f m; using a global regression", bw)
            bw = math.inf
            beta, minv, cov = local_fits(xy, y, D, day.node_xy, bw, kernel_code(self.kernel), True)
        beta = _nearest_fill(beta, day.node_xy)
        minv = _nearest_fill(minv, day.node_xy)
        cov = _nearest_fill(cov, day.node_xy)
        predy, influ = fit_terms(D, beta, minv, cell)
        rss = float(((y - predy) ** 2).sum())
        tr_s = float(influ.sum())
        sigma2 = rss / (n - tr_s) if n - tr_s > 1e-9 else rss / max(n, 1)
        # back to raw predictor units: beta_raw = T beta_std, cov_raw = T C T'
        p_full = k + 1
        T = np.zeros((p_full, 1 + int(keep.sum())))
        T[0, 0] = 1.0
        for col, j in enumerate(np.flatnonzero(keep), start=1):
            T[0, col] = -mean[j] / scale[j]
            T[j + 1, col] = 1.0 / scale[j]
        self.coef_ = beta @ T.T
        self.cov_ = np.einsum("ab,nbc,dc->nad", T, cov * sigma2, T)
        self.bandwidth_ = bw
        self.aicc_ = aicc
        self.sigma2_ = sigma2
        self.tr_S_ = tr_s
        self.n_train_ = n
        self.x_mean_ = mean
        self.x_scale_ = scale
        self.features_used_ = tuple(nm for nm, kp in zip(day.feature_names, keep) if kp)
        self.shape_ = tuple(day.shape)
        return self

    def predict(self, block: FineBlock) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted("coef_")
        R, C = self.shape_
        p = self.coef_.shape[1]
        cov = self.cov_.reshape(R, C, p, p) if block.uncertainty else None  # x' C x: about 2/3 of the work
        return apply_fields(block.X, block.fr, block.fc, self.coef_.reshape(R, C, p), cov, self.sigma2_)

    def predict_coarse(self, day: CoarseData) -> np.ndarray:
        self._check_fitted("coef_")
        return np.einsum("np,np->n", _design(day.X, True), self.coef_)

    def summary(self) -> dict:
        if not hasattr(self, "coef_"):
            return {}
        return {
            "bandwidth_km": self.bandwidth_ / 1000.0,
            "aicc": self.aicc_,
            "sigma_coarse": math.sqrt(max(self.sigma2_, 0.0)),
            "n_train": self.n_train_,
        }
