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
from collections.abc import Callable, Sequence

import numpy as np

from .base import CoarseData, Downscaler, FineBlock

log = logging.getLogger(__name__)

#: fewest super-cell anomaly pairs for an estimate
MIN_PAIRS = 20
#: the largest gain (averaged anomalies may need more than 1)
MAX_GAIN = 2.0


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
) -> tuple[float, int]:
    """The anomaly gain ``k`` (see the module docstring) from ``(CoarseData, count)`` days;
    returns ``(k, pairs)``, ``k = 1`` when there are too few pairs. With ``window`` > 0
    the predicted anomalies are first averaged over the days within +/- ``window`` (as
    :func:`combine_anomalies` does at 1 km), so ``k`` fits the averaged anomalies.
    ``check`` is called once per day (to raise on cancellation)."""
    per: dict[tuple[int, int], dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {o: {} for o in offsets}
    for data, count in days:
        if check is not None:
            check()
        for off in offsets:
            sup, sidx, fr, fc = super_cells(data, count, off, block)
            if sup.train_mask.sum() < len(data.feature_names) + 4:
                continue
            est = template.clone()
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
        acc = blk[ok].astype(np.float64) - m
        n = np.ones(acc.size)
        for p_o, m_o in others:
            a = p_o[r0 : r0 + step][ok].astype(np.float64) - m_o[cells]
            fin = np.isfinite(a)
            acc[fin] += a[fin]
            n[fin] += 1
        vals = blk[ok].astype(np.float64)
        vals[good] = m[good] + k * (acc[good] / n[good])
        blk[ok] = vals.astype(np.float32)


def smooth_means(mean: np.ndarray, fr: np.ndarray, fc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The cell means ``(n_cells,)`` interpolated bilinearly between cell centres at the
    positions ``fr, fc`` (cells without a mean take the nearest cell's): a large-scale
    field without cell edges."""
    from .interp import interpolate
    from .residual import _fill_nodes

    return interpolate(_fill_nodes(np.asarray(mean, dtype=np.float64), shape), fr, fc, shape)


def combine_anomalies_smooth(
    pred: np.ndarray,
    mean: np.ndarray,
    others: Sequence[tuple[np.ndarray, np.ndarray]],
    fr: np.ndarray,
    fc: np.ndarray,
    shape: tuple[int, int],
    k: float,
    block_rows: int | None = None,
) -> None:
    """In place, like :func:`combine_anomalies` but relative to the smooth large-scale
    field ``F_t`` (the day's cell means interpolated between cell centres, see
    :func:`smooth_means`) instead of the cell means: ``pred = F + k mean_t(pred_t - F_t)``.
    No term is constant per cell, so the result has no cell edges."""
    H, W = pred.shape
    step = block_rows or max(1, 1_000_000 // max(W, 1))
    for r0 in range(0, H, step):
        blk = pred[r0 : r0 + step]
        ok = np.isfinite(blk)
        if not ok.any():
            continue
        pr, pc = fr[r0 : r0 + step][ok], fc[r0 : r0 + step][ok]
        F = smooth_means(mean, pr, pc, shape)
        acc = blk[ok].astype(np.float64) - F
        n = np.ones(acc.size)
        for p_o, m_o in others:
            a = p_o[r0 : r0 + step][ok].astype(np.float64) - smooth_means(m_o, pr, pc, shape)
            fin = np.isfinite(a)
            acc[fin] += a[fin]
            n[fin] += 1
        blk[ok] = (F + k * (acc / n)).astype(np.float32)
