"""Scale transfer: how much of a coarse-scale model's within-cell variation to keep.

A relation fitted between coarse cells (36 km) is steeper than the one that holds between
1 km pixels inside a cell: at the coarse scale the predictors vary mostly with soil
moisture (rain patterns), inside a cell they also vary with terrain, vegetation and
sensor noise that soil moisture does not follow; and coefficient estimation noise adds
spurious variation. Applied unchanged, the model's within-cell anomalies are too large.

The *anomaly gain* ``k`` is estimated from the coarse data alone, one scale up: the coarse
cells are grouped into 2 x 2 super-cells, the same method is fitted between super-cells,
applied to the coarse cells, and ``k`` is the regression slope of the observed
within-super-cell anomalies of the coarse SSM on the predicted ones (pooled over days
and two block offsets; retrieval noise in the observed anomalies does not bias a slope).
Assuming the ratio transfers one scale down (36 km -> 1 km), the 1 km prediction keeps
its cell means and scales its within-cell anomalies by ``k`` (clamped to 0..2; above 1
only when the anomalies are averaged over days, which damps them).

:func:`combine_anomalies` also averages the within-cell anomalies over neighbouring days:
the persistent part of a cell's pattern (soil, terrain, vegetation) adds up, the model's
day-to-day noise averages down.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..accel import kernel, njit, prange
from .base import CoarseData, Downscaler, FineBlock
from .interp import interp_at

log = logging.getLogger(__name__)

#: fewest super-cell anomaly pairs for an estimate
MIN_PAIRS = 20
#: the largest gain (averaged anomalies may need more than 1)
MAX_GAIN = 2.0
#: fewest days of a coarse cell behind its run-mean anomaly (static/dynamic split)
MIN_DAYS_STATIC = 5


def super_cells(data: CoarseData, count: np.ndarray, offset: tuple[int, int], block: int = 2
                ) -> tuple[CoarseData, np.ndarray, np.ndarray, np.ndarray]:
    """Aggregate a coarse day into ``block x block`` super-cells starting at ``offset``.

    Returns the super-cell :class:`CoarseData` (means weighted by valid 1 km pixel counts),
    the super-cell index of every coarse cell ``(n,)`` and the coarse cell centres as
    fractional node coordinates ``fr, fc`` of the super grid.
    """
    R, C = data.shape
    r, c = np.divmod(np.arange(R * C), C)
    sr = (r + offset[0]) // block
    sc = (c + offset[1]) // block
    Rs = (R - 1 + offset[0]) // block + 1
    Cs = (C - 1 + offset[1]) // block + 1
    sidx = sr * Cs + sc
    ns = Rs * Cs
    w = count.astype(np.float64)
    xok = (w > 0) & np.isfinite(data.X).all(axis=1)
    yok = xok & np.isfinite(data.y) & data.usable
    wx = np.bincount(sidx[xok], weights=w[xok], minlength=ns)
    wy = np.bincount(sidx[yok], weights=w[yok], minlength=ns)
    with np.errstate(invalid="ignore", divide="ignore"):
        X = np.column_stack([np.bincount(sidx[xok], weights=(data.X[xok, j] * w[xok]), minlength=ns) / wx
                             for j in range(data.X.shape[1])]) if data.X.shape[1] else np.zeros((ns, 0))
        y = np.bincount(sidx[yok], weights=data.y[yok] * w[yok], minlength=ns) / wy
    y[wy <= 0] = np.nan
    members = np.bincount(sidx[yok], minlength=ns)
    usable = members >= 2
    nxy = np.column_stack([np.bincount(sidx, weights=data.node_xy[:, k], minlength=ns) for k in range(2)])
    nxy /= np.maximum(np.bincount(sidx, minlength=ns), 1)[:, None]
    sup = CoarseData(y, X, usable, nxy, (Rs, Cs), data.feature_names, day=data.day)
    fr = (r + 0.5 + offset[0]) / block - 0.5
    fc = (c + 0.5 + offset[1]) / block - 0.5
    return sup, sidx, fr, fc


def anomaly_gain(
    template: Downscaler,
    days: Sequence[tuple[CoarseData, np.ndarray]],
    offsets: Sequence[tuple[int, int]] = ((0, 0), (1, 1)),
    block: int = 2,
    window: int = 0,
    check: Callable[[], None] | None = None,
    bandwidths: Mapping[int, float] | None = None,
) -> tuple[float, int]:
    """The anomaly gain ``k`` (see the module docstring) from ``(CoarseData, count)`` days;
    returns ``(k, pairs)``, ``k = 1`` when there are too few pairs. With ``window`` > 0
    the predicted anomalies are first averaged over the days within +/- ``window`` (as
    :func:`combine_anomalies` does at 1 km), so ``k`` fits the averaged anomalies.
    ``check`` is called once per day (to raise on cancellation). ``bandwidths`` (day
    ordinal -> metres): see :func:`fit_template`."""
    per = _anomaly_pairs(template, days, offsets, block, check, bandwidths)
    k, pairs = _pooled_slope(per, window)
    return k, pairs


@dataclass(frozen=True)
class Gains:
    """Anomaly gains estimated one scale up: ``pooled`` (all within-cell anomalies),
    ``static`` (each cell's anomaly averaged over the run: soil, terrain, vegetation) and
    ``dynamic`` (the day-to-day departures from it: what a station's time series sees);
    ``pairs`` super-cell anomaly pairs behind them."""

    pooled: float
    static: float
    dynamic: float
    pairs: int


def anomaly_gains(
    template: Downscaler,
    days: Sequence[tuple[CoarseData, np.ndarray]],
    offsets: Sequence[tuple[int, int]] = ((0, 0), (1, 1)),
    block: int = 2,
    window: int = 0,
    check: Callable[[], None] | None = None,
    bandwidths: Mapping[int, float] | None = None,
) -> Gains:
    """Like :func:`anomaly_gain`, and split: the slope of the observed on the predicted
    within-super-cell anomalies for their run means per cell (``static``) and for the
    daily departures from those means (``dynamic``). Predictors that follow soil moisture
    from day to day (LST under a changing sky) give a dynamic gain near the static one; a
    model whose day-to-day within-cell changes are noise gets a dynamic gain near 0, so
    its noise stays out of each pixel's time series. Retrieval noise in the observed
    anomalies does not bias a slope. ``bandwidths``: see :func:`fit_template`."""
    return gains_from_pairs(_anomaly_pairs(template, days, offsets, block, check, bandwidths), window)


def gains_from_pairs(per: dict, window: int = 0) -> Gains:
    """:class:`Gains` from the super-cell anomaly pairs gathered per day
    (``per[offset][day ordinal] = (predicted, observed, weight)``, as made by
    :func:`anomaly_gains`; runs that gather them day by day call this directly)."""
    k, pairs = _pooled_slope(per, window)
    if pairs < MIN_PAIRS:
        return Gains(k, k, k, pairs)
    sn = sd_ = dn = dd = 0.0
    for by_day in per.values():
        if not by_day:
            continue
        ords = sorted(by_day)
        AP = np.vstack([_window_mean(by_day, o, window) for o in ords])
        AO = np.vstack([by_day[o][1] for o in ords])
        W = np.vstack([by_day[o][2] for o in ords])
        ok = np.isfinite(AP) & np.isfinite(AO) & (W > 0)
        n = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mp = np.where(n > 0, np.where(ok, AP, 0.0).sum(axis=0) / n, np.nan)
            mo = np.where(n > 0, np.where(ok, AO, 0.0).sum(axis=0) / n, np.nan)
        cells = n >= MIN_DAYS_STATIC
        sn += float((n * mo * mp)[cells].sum())
        sd_ += float((n * mp * mp)[cells].sum())
        sel = ok & cells[None, :]
        dp = np.where(sel, AP - mp[None, :], 0.0)
        do = np.where(sel, AO - mo[None, :], 0.0)
        dn += float((W * do * dp)[sel].sum())
        dd += float((W * dp * dp)[sel].sum())
    ks = float(np.clip(sn / sd_, 0.0, MAX_GAIN)) if sd_ > 0 else k
    kd = float(np.clip(dn / dd, 0.0, MAX_GAIN)) if dd > 0 else k
    return Gains(k, ks, kd, pairs)


def fit_template(template: Downscaler, day: int, bandwidths: Mapping[int, float] | None) -> Downscaler:
    """A fresh copy of ``template`` for a super-cell fit of ``day`` (ordinal).

    By default a GWR template searches its own AICc bandwidth for each super-cell fit (two
    per day, one per block offset; each costs about 1/16 of the day's own search: a quarter
    of the locations with a quarter of the neighbours each). With ``bandwidths`` holding
    the day (its selected coarse-scale bandwidth, m), the super-cell fits use it and no
    search runs. That is a different estimator, not a faster one: the AICc optimum widens
    as the cells get sparser (the variance term), so the 36 km bandwidth on 72 km
    super-cells fits a more local, noisier model than the one the coarse day selects for
    itself, and the gain fitted to its anomalies is diluted (lower). It is offered for
    runs that fit the days before estimating the gain and accept that change.
    """
    est = template.clone()
    bw = None if bandwidths is None else bandwidths.get(day)
    if bw is not None and "bandwidth" in est.get_params() and not est.get_params()["bandwidth"]:
        est.set_params(bandwidth=float(bw))
    return est


def _anomaly_pairs(template: Downscaler, days: Sequence[tuple[CoarseData, np.ndarray]],
                   offsets: Sequence[tuple[int, int]], block: int, check: Callable[[], None] | None,
                   bandwidths: Mapping[int, float] | None = None) -> dict:
    """Per block offset and day, the predicted and observed within-super-cell anomalies of
    the coarse cells and their weights ``(ap, ao, w)``, each ``(n_cells,)``."""
    per: dict[tuple[int, int], dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {o: {} for o in offsets}
    for data, count in days:
        if check is not None:
            check()
        for off in offsets:
            sup, sidx, fr, fc = super_cells(data, count, off, block)
            if sup.train_mask.sum() < len(data.feature_names) + 4:
                continue
            est = fit_template(template, data.day, bandwidths)
            try:
                est.fit(sup)
            except ValueError:
                continue
            ok = (count > 0) & np.isfinite(data.X).all(axis=1)
            pred = np.full(data.n_cells, np.nan)
            p, _ = est.predict(FineBlock(data.X[ok], fr[ok], fc[ok], sidx[ok]))
            pred[ok] = p
            use = ok & np.isfinite(pred) & np.isfinite(data.y) & data.usable
            w = count.astype(np.float64) * use
            ns = sup.n_cells
            wsum = np.bincount(sidx, weights=w, minlength=ns)
            n_in = np.bincount(sidx, weights=use.astype(float), minlength=ns)
            with np.errstate(invalid="ignore", divide="ignore"):
                mp = np.bincount(sidx, weights=np.where(use, pred, 0.0) * w, minlength=ns) / wsum
                mo = np.bincount(sidx, weights=np.where(use, data.y, 0.0) * w, minlength=ns) / wsum
            sel = use & (n_in[sidx] >= 2)
            ap = np.where(sel, pred - mp[sidx], np.nan)
            ao = np.where(sel, data.y - mo[sidx], np.nan)
            per[off][data.day] = (ap, ao, np.where(sel, w, 0.0))
    return per


def _window_mean(by_day: dict, day: int, window: int) -> np.ndarray:
    ap = by_day[day][0]
    if window <= 0:
        return ap
    stack = np.vstack([by_day[o][0] for o in by_day if abs(o - day) <= window])
    cnt = np.isfinite(stack).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(cnt > 0, np.nansum(stack, axis=0) / cnt, np.nan)
    return np.where(np.isfinite(ap), avg, np.nan)


def _pooled_slope(per: dict, window: int) -> tuple[float, int]:
    num = den = 0.0
    pairs = 0
    for by_day in per.values():
        for day, (ap, ao, w) in by_day.items():
            if window > 0:
                near = [by_day[o][0] for o in by_day if abs(o - day) <= window]
                stack = np.vstack(near)
                cnt = np.isfinite(stack).sum(axis=0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    ap_avg = np.where(cnt > 0, np.nansum(stack, axis=0) / cnt, np.nan)
                ap = np.where(np.isfinite(ap), ap_avg, np.nan)
            sel = np.isfinite(ap) & np.isfinite(ao) & (w > 0)
            num += float((ao[sel] * ap[sel] * w[sel]).sum())
            den += float((ap[sel] * ap[sel] * w[sel]).sum())
            pairs += int(sel.sum())
    if pairs < MIN_PAIRS or not den > 0:
        log.info("anomaly gain: too few coarse cells to estimate it (%d pairs); within-cell variation kept as modelled", pairs)
        return 1.0, pairs
    k = float(np.clip(num / den, 0.0, MAX_GAIN))
    if not math.isfinite(k):  # pragma: no cover - guarded above
        k = 1.0
    return k, pairs


def _average_with(today: np.ndarray, others) -> np.ndarray:
    """Per element, the mean of ``today`` and each array of ``others`` where it is finite."""
    acc = today.copy()
    n = np.ones(acc.size)
    for a in others:
        fin = np.isfinite(a)
        acc[fin] += a[fin]
        n[fin] += 1
    return acc / n


def combine_anomalies(
    pred: np.ndarray,
    mean: np.ndarray,
    others: Sequence[tuple[np.ndarray, np.ndarray]],
    index: np.ndarray,
    k: float,
) -> None:
    """In place: ``pred = m_c + k * mean_t(pred_t - m_c,t)`` for pixels inside a cell, where
    the anomaly average runs over today and the ``others`` days (``(pred, cell means)``
    pairs) that have a value at the pixel; pixels without a value today stay NaN."""
    H, W = pred.shape
    step = max(1, 1_000_000 // max(W, 1))
    for r0 in range(0, H, step):
        blk = pred[r0 : r0 + step]
        idx = index[r0 : r0 + step]
        ok = (idx >= 0) & np.isfinite(blk)
        cells = idx[ok]
        m = mean[cells]
        good = np.isfinite(m)
        avg = _average_with(blk[ok].astype(np.float64) - m,
                            (p_o[r0 : r0 + step][ok].astype(np.float64) - m_o[cells] for p_o, m_o in others))
        vals = blk[ok].astype(np.float64)
        vals[good] = m[good] + k * avg[good]
        blk[ok] = vals.astype(np.float32)


def smooth_anomaly(
    pred: np.ndarray,
    mean: np.ndarray,
    others: Sequence[tuple[np.ndarray, np.ndarray]],
    fr: np.ndarray,
    fc: np.ndarray,
    shape: tuple[int, int],
    block_rows: int | None = None,
    field: bool = True,
) -> tuple[np.ndarray | None, np.ndarray]:
    """The smooth large-scale field ``F`` of a day's 1 km prediction (its cell means
    ``mean (n_cells,)`` interpolated bilinearly between cell centres at the positions
    ``fr, fc``, cells without a mean taking the nearest cell's: a field without cell
    edges) and its within-cell
    anomaly ``A = mean_t(pred_t - F_t)`` averaged over today and the ``others`` days
    (``(pred, cell means)`` pairs) that have a value at the pixel; float32 ``(H, W)``
    each, NaN where ``pred`` is NaN. Each day's node field is filled once; the pixels
    go through compiled passes in blocks of ``block_rows`` (a float64 sum per block).
    ``field=False`` returns ``None`` for ``F`` (only a block of it is held: a whole-grid
    array less to allocate when only ``A`` is wanted)."""
    from .residual import _fill_nodes

    H, W = pred.shape
    R, C = int(shape[0]), int(shape[1])
    step = block_rows or max(1, 1_000_000 // max(W, 1))
    F = np.empty((H, W), dtype=np.float32) if field else None  # every pixel written by the passes
    scratch = None if field else np.empty(min(step, H) * W, dtype=np.float32)
    A = np.empty((H, W), dtype=np.float32)
    nodes = _fill_nodes(np.asarray(mean, dtype=np.float64), shape)
    other_nodes = [(p_o, _fill_nodes(np.asarray(m_o, dtype=np.float64), shape)) for p_o, m_o in others]
    flat = lambda a, r0: np.ascontiguousarray(a[r0 : r0 + step]).reshape(-1)  # noqa: E731 (a view when contiguous)
    for r0 in range(0, H, step):
        p = flat(pred, r0)
        rr, cc = flat(fr, r0), flat(fc, r0)
        Ab = A[r0 : r0 + step].reshape(-1)
        Fb = F[r0 : r0 + step].reshape(-1) if F is not None else scratch[: Ab.size]
        acc = np.empty(p.size)
        n = np.empty(p.size)
        _anomaly_today(p, rr, cc, nodes, R, C, Fb, acc, n)
        for p_o, nodes_o in other_nodes:
            _anomaly_other(p, flat(p_o, r0), rr, cc, nodes_o, R, C, acc, n)
        _anomaly_mean(p, acc, n, Ab)
    return F, A


def _anomaly_today_numpy(p, fr, fc, nodes, R, C, F, acc, n):
    from .interp import _interpolate_numpy

    ok = np.isfinite(p)
    f = _interpolate_numpy(nodes, fr[ok], fc[ok], R, C)
    F[~ok] = np.nan
    F[ok] = f
    acc[ok] = p[ok].astype(np.float64) - f
    n[ok] = 1.0


def _anomaly_other_numpy(p, p_o, fr, fc, nodes, R, C, acc, n):
    from .interp import _interpolate_numpy

    ok = np.flatnonzero(np.isfinite(p))
    a = p_o[ok].astype(np.float64) - _interpolate_numpy(nodes, fr[ok], fc[ok], R, C)
    fin = np.isfinite(a)
    acc[ok[fin]] += a[fin]
    n[ok[fin]] += 1.0


def _anomaly_mean_numpy(p, acc, n, A):
    ok = np.isfinite(p)
    A[~ok] = np.nan
    A[ok] = acc[ok] / n[ok]


def _anomaly_today_nb(p, fr, fc, nodes, R, C, F, acc, n):  # pragma: no cover - compiled
    for i in prange(p.size):
        if np.isfinite(p[i]):
            f = interp_at(nodes, np.float64(fr[i]), np.float64(fc[i]), R, C)
            F[i] = f
            acc[i] = np.float64(p[i]) - f
            n[i] = 1.0
        else:
            F[i] = np.nan


def _anomaly_other_nb(p, p_o, fr, fc, nodes, R, C, acc, n):  # pragma: no cover - compiled
    for i in prange(p.size):
        if np.isfinite(p[i]):
            a = np.float64(p_o[i]) - interp_at(nodes, np.float64(fr[i]), np.float64(fc[i]), R, C)
            if np.isfinite(a):
                acc[i] += a
                n[i] += 1.0


def _anomaly_mean_nb(p, acc, n, A):  # pragma: no cover - compiled
    for i in prange(p.size):
        if np.isfinite(p[i]):
            A[i] = acc[i] / n[i]
        else:
            A[i] = np.nan


#: one block of :func:`smooth_anomaly`: today's smooth field and anomaly, each other day's
#: anomaly added where it has a value, the mean (the same arithmetic in both paths)
_anomaly_today = kernel(njit(parallel=True)(_anomaly_today_nb) if interp_at is not None else None,
                        _anomaly_today_numpy, "smooth_anomaly_today")
_anomaly_other = kernel(njit(parallel=True)(_anomaly_other_nb) if interp_at is not None else None,
                        _anomaly_other_numpy, "smooth_anomaly_other")
_anomaly_mean = kernel(njit(parallel=True)(_anomaly_mean_nb), _anomaly_mean_numpy, "smooth_anomaly_mean")


def combine_anomalies_smooth(
    pred: np.ndarray,
    mean: np.ndarray,
    others: Sequence[tuple[np.ndarray, np.ndarray]],
    fr: np.ndarray,
    fc: np.ndarray,
    shape: tuple[int, int],
    k: float,
    block_rows: int | None = None,
    static: np.ndarray | None = None,
    k_static: float | None = None,
) -> None:
    """In place, like :func:`combine_anomalies` but relative to the smooth large-scale
    field ``F_t`` (:func:`smooth_anomaly`) instead of the cell means: ``pred = F + k A``.
    With a ``static (H, W)`` anomaly (the pixel's anomaly averaged over the run),
    ``pred = F + k_static S + k (A - S)``: the persistent pattern and the day-to-day
    departures get their own gains. No term is constant per cell, so the result has no
    cell edges."""
    F, A = smooth_anomaly(pred, mean, others, fr, fc, shape, block_rows)
    two_gains = static is not None and k_static is not None
    S = static if two_gains else A
    ks = np.float32(k_static if two_gains else k)
    _recombine(pred.reshape(-1), F.reshape(-1), A.reshape(-1), np.ascontiguousarray(S, dtype=np.float32).reshape(-1),
               ks, np.float32(k))


def _recombine_numpy(pred, F, A, S, ks, k):
    ok = np.isfinite(F)
    Sv = np.where(np.isfinite(S[ok]), S[ok], A[ok])
    pred[ok] = F[ok] + ks * Sv + k * (A[ok] - Sv)


@njit(parallel=True)
def _recombine_numba(pred, F, A, S, ks, k):  # pragma: no cover - compiled
    for i in prange(pred.size):
        f = F[i]
        if np.isfinite(f):
            a = A[i]
            s = S[i] if np.isfinite(S[i]) else a
            pred[i] = (f + ks * s) + k * (a - s)


#: in place ``pred = F + ks S + k (A - S)`` where ``F`` is finite (float32 arithmetic;
#: ``S`` NaN takes ``A``: the pixel's anomaly is all persistent)
_recombine = kernel(_recombine_numba, _recombine_numpy, "recombine_anomalies")
