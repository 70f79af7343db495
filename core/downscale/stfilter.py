"""Space-time filtering of the coarse residuals: the retrieval is a noisy observation.

A coarse retrieval is the cell mean of soil moisture plus a retrieval error of typically
0.02-0.04 m3/m3 that is (nearly) independent from cell to cell and from day to day.
Copied into every 1 km pixel, that error becomes each pixel's error, day after day, and
draws the cells as blocks. Here the coarse *residuals* of the model (coarse value minus
the model's cell mean) are treated as ``r_c(t) = s_c(t) + e_c(t)``: a signal ``s`` that is
correlated in space and time (what the predictors miss: rain the day's LST does not show,
soil, the product's regional bias) and a white error ``e`` (the nugget). Simple kriging
estimates ``s`` at every cell centre and day from the residuals of the cells within a few
cells and days (the retrieval's own cell weighted by its signal-to-noise ratio), and gives
the estimate's variance. The 1 km field adds the estimate interpolated bilinearly between
cell centres, so there are no cell edges; this is regression kriging with a nugget, the
noise-filtering form of area-to-point regression kriging (Wang, Shi & Atkinson 2015; Kerry
et al. 2012), with the cell support approximated by its centre.

The covariance model is separable and exponential,
``C(h, tau) = s2 exp(-h / L) exp(-|tau| / T)`` plus ``n2`` at ``(0, 0)``; its parameters
are estimated from the residuals themselves (:func:`estimate_covariance`): the empirical
covariances at the shortest non-zero lags in space (same day) and time (same cell) carry
no retrieval noise, and extrapolated to lag 0 they give the signal variance; the rest of
the lag-0 variance is the retrieval noise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: fewest residual pairs behind an empirical covariance
MIN_PAIRS = 30
#: fewest pairs (all lags together) to estimate the retrieval error from the data
MIN_PAIRS_ESTIMATE = 500
#: the smallest share of the residual variance taken as retrieval error
MIN_NOISE_SHARE = 0.05
#: day-to-day autocorrelation of the decaying part of the residual signal: from a
#: 10-hour to a 20-day e-folding time (soil moisture anomalies last days, not hours)
RHO_RANGE = (0.1, 0.95)


@dataclass(frozen=True)
class Covariance:
    """Separable exponential covariance of the residual signal plus a nugget.

    ``signal_var`` (m3/m3)^2, ``noise_var`` (m3/m3)^2 the retrieval error variance,
    ``length_m`` spatial e-folding length (m), ``time_days`` temporal e-folding (days),
    ``pairs`` residual pairs the estimate rests on (0 = given or a fallback).
    """

    signal_var: float
    noise_var: float
    length_m: float
    time_days: float
    pairs: int = 0

    def __call__(self, h: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Signal covariance at distances ``h`` (m) and time lags ``tau`` (days)."""
        return self.signal_var * np.exp(-np.asarray(h) / self.length_m - np.abs(np.asarray(tau)) / self.time_days)

    @property
    def noise_sd(self) -> float:
        return math.sqrt(max(self.noise_var, 0.0))

    @property
    def signal_sd(self) -> float:
        return math.sqrt(max(self.signal_var, 0.0))


def _pairs_same_day(resid: np.ndarray, node_xy: np.ndarray, spacing: float, lag: int) -> tuple[float, int, float]:
    """Mean product of residuals of cell pairs at ``lag`` spacings (+/- 0.5) on the same day;
    returns (covariance, pairs, mean distance m)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(node_xy)
    pairs = tree.query_pairs((lag + 0.5) * spacing, output_type="ndarray")
    if pairs.size == 0:
        return math.nan, 0, math.nan
    d = np.hypot(*(node_xy[pairs[:, 0]] - node_xy[pairs[:, 1]]).T)
    sel = d > (lag - 0.5) * spacing
    i, j = pairs[sel, 0], pairs[sel, 1]
    if i.size == 0:
        return math.nan, 0, math.nan
    a, b = resid[:, i], resid[:, j]
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())
    if n == 0:
        return math.nan, 0, math.nan
    return float((a[ok] * b[ok]).mean()), n, float(d[sel].mean())


def _pairs_same_cell(resid: np.ndarray, ordinals: np.ndarray, lag: int) -> tuple[float, int]:
    pos = {int(o): k for k, o in enumerate(ordinals)}
    prods: list[np.ndarray] = []
    for k, o in enumerate(ordinals):
        k2 = pos.get(int(o) + lag)
        if k2 is None:
            continue
        a, b = resid[k], resid[k2]
        ok = np.isfinite(a) & np.isfinite(b)
        prods.append(a[ok] * b[ok])
    allp = np.concatenate(prods) if prods else np.zeros(0)
    return (float(allp.mean()) if allp.size else math.nan), int(allp.size)


def _extrapolate(c1: float, c2: float) -> float:
    """Lag-0 value of an exponential through the covariances at lags 1 and 2 (NaN when
    they do not decay)."""
    if np.isfinite(c1) and np.isfinite(c2) and c1 > 0 and c2 > 0 and c1 > c2:
        return c1 * c1 / c2
    return math.nan


def _persistent_plus_decaying(c1: float, c2: float, c3: float) -> float:
    """Lag-0 signal variance of a temporal covariance ``P + D rho^tau`` (a persistent part
    and one decaying over days) through its values at lags 1, 2 and 3 days (NaN when they
    do not decay): ``rho = (c2 - c3) / (c1 - c2)``, ``P + D = c1 + (c1 - c2) / rho``."""
    if not (np.isfinite(c1) and np.isfinite(c2) and np.isfinite(c3) and c1 > c2 > c3 and c1 > 0):
        return math.nan
    rho = min(max((c2 - c3) / (c1 - c2), RHO_RANGE[0]), RHO_RANGE[1])
    return c1 + (c1 - c2) / rho


def estimate_covariance(
    resid: np.ndarray,
    node_xy: np.ndarray,
    ordinals: np.ndarray,
    spacing: float,
    noise_sd: float | None = None,
) -> Covariance:
    """Estimate the :class:`Covariance` of residuals ``resid (days, n_cells)`` (NaN
    missing) at cell centres ``node_xy (n_cells, 2)`` (m) on days ``ordinals (days,)``;
    ``spacing`` the cell spacing (m). ``noise_sd`` (m3/m3) fixes the retrieval error
    instead of estimating it.

    The residuals are centred per day. The retrieval error is white: each day's retrieval
    is a separate measurement, so the covariances of a cell's residuals one, two and three
    days apart hold signal only. The signal is a persistent part (what the predictors miss
    for good: soil, the retrieval's bias in that cell) plus a part that decays over days
    (rain the predictors do not see, drying), ``P + D rho^tau``; the three lags give
    ``s2 = P + D`` and ``n2 = C(0, 0) - s2`` (:func:`_persistent_plus_decaying`). The
    temporal axis is used because the same-day spatial covariances are distorted by the
    model's own fit (a local regression removes the smooth part of the residual, leaving
    negative covariances a few cells apart); they serve only when a run has too few days,
    extrapolated exponentially from one and two cell spacings with the one- and two-day
    covariances (their mean). ``L`` and ``T`` are the e-folding lengths that reproduce the
    lag-1 correlations. Where the covariances do not decay, the lag-1 covariance is taken
    as the signal variance (all the drop to it is treated as noise).
    """
    r = np.asarray(resid, dtype=np.float64)
    ok = np.isfinite(r)
    if ok.any():
        with np.errstate(invalid="ignore"):
            day_mean = np.nanmean(np.where(ok, r, np.nan), axis=1, keepdims=True)
        r = np.where(ok, r - np.nan_to_num(day_mean), np.nan)
    n0 = int(ok.sum())
    c0 = float(np.mean(r[ok] ** 2)) if n0 else 0.0
    if n0 < MIN_PAIRS or c0 <= 0:
        nv = c0 if noise_sd is None else float(noise_sd) ** 2
        return Covariance(max(c0 - nv, 0.0) + 1e-12, nv, 3 * spacing, 1.0, 0)
    cs = [_pairs_same_day(r, node_xy, spacing, lag) for lag in (1, 2)]
    ct = [_pairs_same_cell(r, np.asarray(ordinals), lag) for lag in (1, 2, 3)]
    cs1, cs2 = ((c[0] if c[1] >= MIN_PAIRS else math.nan) for c in cs)
    ct1, ct2, ct3 = ((c[0] if c[1] >= MIN_PAIRS else math.nan) for c in ct)
    pairs = sum(c[1] for c in cs) + sum(c[1] for c in ct[:2])
    s2_time = _persistent_plus_decaying(ct1, ct2, ct3) if ct[2][1] >= MIN_PAIRS_ESTIMATE // 2 else math.nan
    ests = [e for e in (_extrapolate(cs1, cs2), _extrapolate(ct1, ct2)) if np.isfinite(e)]
    if np.isfinite(s2_time):
        s2 = s2_time
    elif ests:
        s2 = float(np.mean(ests))
    else:
        lag1 = [c for c in (cs1, ct1) if np.isfinite(c) and c > 0]
        s2 = max(lag1) if lag1 else 1e-3 * c0
    if noise_sd is not None:
        nv = float(noise_sd) ** 2
        s2 = max(c0 - nv, 1e-3 * c0)
    elif pairs < MIN_PAIRS_ESTIMATE:  # too few cells and days for the lags to say anything
        log.info("Only %d residual pairs: the retrieval error cannot be estimated; half the residual variance is "
                 "taken as retrieval error (set it with the retrieval error option)", pairs)
        s2 = nv = 0.5 * c0
    else:  # no retrieval is perfect: at least MIN_NOISE_SHARE of the variance is error
        s2 = float(np.clip(s2, 1e-3 * c0, (1.0 - MIN_NOISE_SHARE) * c0))
        nv = c0 - s2

    def efold(c1: float, unit: float, default: float) -> float:
        if np.isfinite(c1) and 0 < c1 < s2:
            return unit / math.log(s2 / c1)
        return default if not (np.isfinite(c1) and c1 >= s2) else 1000.0 * unit

    L = float(np.clip(efold(cs1, spacing, 0.5 * spacing), 0.25 * spacing, 1000.0 * spacing))
    T = float(np.clip(efold(ct1, 1.0, 0.5), 0.25, 1000.0))
    return Covariance(float(s2), float(nv), L, T, int(pairs))


def krige(
    resid: Mapping[int, np.ndarray],
    node_xy: np.ndarray,
    days: list[int],
    cov: Covariance,
    spacing: float,
    radius_cells: float = 3.0,
    window_days: int | None = None,
    tile: int = 8,
    grid_shape: tuple[int, int] | None = None,
    check: Callable[[], None] | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Simple kriging of the residual signal at every cell centre on ``days``.

    ``resid`` maps day ordinals to ``(n_cells,)`` residuals (NaN missing; any days, also
    outside ``days``); cells within ``radius_cells`` spacings and ``window_days`` days
    (default: ~2 temporal e-folding lengths, 1-5 days) are used. The cells are processed in
    tiles of ``tile x tile`` cells of ``grid_shape`` (one linear system per tile and day).
    Returns ``{day: (signal (n,), variance (n,))}``; the variance is the signal variance
    where no data is near.
    """
    n = node_xy.shape[0]
    if window_days is None:
        window_days = int(np.clip(round(2.0 * cov.time_days), 1, 5))
    rows, cols = grid_shape if grid_shape is not None else (1, n)
    r_idx, c_idx = np.divmod(np.arange(n), cols)
    margin = int(math.ceil(radius_cells))
    ordinals = sorted(resid)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    tiles = []
    for tr in range(0, rows, tile):
        for tc in range(0, cols, tile):
            tgt = np.flatnonzero((r_idx >= tr) & (r_idx < tr + tile) & (c_idx >= tc) & (c_idx < tc + tile))
            src = np.flatnonzero((r_idx >= tr - margin) & (r_idx < tr + tile + margin)
                                 & (c_idx >= tc - margin) & (c_idx < tc + tile + margin))
            if tgt.size:
                tiles.append((tgt, src))
    reach = radius_cells * spacing
    for day in days:
        if check is not None:
            check()
        near = [o for o in ordinals if abs(o - day) <= window_days]
        sig = np.zeros(n)
        var = np.full(n, cov.signal_var)
        for tgt, src in tiles:
            xs, ts, vs = [], [], []
            for o in near:
                v = resid[o][src]
                ok = np.isfinite(v)
                if ok.any():
                    xs.append(node_xy[src[ok]])
                    ts.append(np.full(int(ok.sum()), float(o - day)))
                    vs.append(v[ok])
            if not xs:
                continue
            X = np.concatenate(xs)
            t = np.concatenate(ts)
            v = np.concatenate(vs)
            # keep sources within reach of some target
            dmin = _min_dist(X, node_xy[tgt])
            keep = dmin <= reach + 1e-6
            if not keep.any():
                continue
            X, t, v = X[keep], t[keep], v[keep]
            h = np.hypot(X[:, None, 0] - X[None, :, 0], X[:, None, 1] - X[None, :, 1])
            K = cov(h, t[:, None] - t[None, :])
            K[np.diag_indices_from(K)] += cov.noise_var + 1e-12 * cov.signal_var
            h0 = np.hypot(node_xy[tgt][:, None, 0] - X[None, :, 0], node_xy[tgt][:, None, 1] - X[None, :, 1])
            k0 = cov(h0, -t[None, :])  # (targets, sources)
            try:
                from scipy.linalg import cho_factor, cho_solve

                cf = cho_factor(K, lower=True, check_finite=False)
                alpha = cho_solve(cf, v, check_finite=False)
                Wt = cho_solve(cf, k0.T, check_finite=False)  # (sources, targets)
            except np.linalg.LinAlgError:  # pragma: no cover - K is SPD by construction
                continue
            sig[tgt] = k0 @ alpha
            var[tgt] = np.maximum(cov.signal_var - np.einsum("ts,st->t", k0, Wt), 0.0)
        out[day] = (sig, var)
    return out


def _min_dist(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    d, _ = cKDTree(targets).query(points)
    return d
