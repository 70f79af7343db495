"""Filling the swath seams: borrowing a cell's value or residual from neighbouring days.

Seams are coarse cells without a retrieval on a day. Model-based methods predict there
without the local residual, adding instead the same cell's residual from the nearest
observed days (:func:`borrow_in_time`); methods that need a coarse value in every cell
(DisPATCh, bilinear) use :func:`fill_coarse` (the cell's own value interpolated in time,
else the nearest observed cell of the day).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def borrow_in_time(series: Mapping[int, np.ndarray], day: int, max_days: int) -> np.ndarray:
    """Per cell, the value of ``day`` interpolated linearly in time from the nearest days
    before and after with a finite value (within ``max_days``); the one side's value when
    only one exists; NaN when none. ``series`` maps day ordinals to ``(n,)`` arrays
    (``day`` itself is ignored)."""
    days = sorted(d for d in series if d != day and abs(d - day) <= max_days)
    n = next(iter(series.values())).size if series else 0
    before_v = np.full(n, np.nan)
    before_d = np.full(n, np.nan)
    after_v = np.full(n, np.nan)
    after_d = np.full(n, np.nan)
    for d in days:  # earlier days first: the last finite one before `day` wins
        v = np.asarray(series[d], dtype=np.float64)
        ok = np.isfinite(v)
        if d < day:
            before_v[ok] = v[ok]
            before_d[ok] = d
    for d in reversed(days):  # later days last-to-first: the first finite one after wins
        v = np.asarray(series[d], dtype=np.float64)
        ok = np.isfinite(v)
        if d > day:
            after_v[ok] = v[ok]
            after_d[ok] = d
    out = np.where(np.isfinite(before_v), before_v, after_v)
    both = np.isfinite(before_v) & np.isfinite(after_v)
    t = (day - before_d[both]) / (after_d[both] - before_d[both])
    out[both] = before_v[both] + t * (after_v[both] - before_v[both])
    return out


def fill_spatial(values: np.ndarray, node_xy: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``values`` with the NaN cells selected by ``where`` set to the nearest finite cell
    (distance between cell centres); unchanged when nothing is finite."""
    out = np.asarray(values, dtype=np.float64).copy()
    ok = np.isfinite(out)
    todo = where & ~ok
    if not todo.any() or not ok.any():
        return out
    from scipy.spatial import cKDTree

    _, j = cKDTree(node_xy[ok]).query(node_xy[todo])
    out[todo] = out[ok][j]
    return out


def fill_coarse(
    y: np.ndarray, series: Mapping[int, np.ndarray], day: int, max_days: int, node_xy: np.ndarray, need: np.ndarray
) -> np.ndarray:
    """The coarse field of ``day`` with missing cells filled: the cell's own value
    interpolated in time (:func:`borrow_in_time`), else the nearest observed cell that day.
    Only cells where ``need`` is True are filled spatially."""
    out = np.asarray(y, dtype=np.float64).copy()
    miss = ~np.isfinite(out)
    if miss.any():
        t = borrow_in_time(series, day, max_days)
        out[miss] = t[miss]
        out = fill_spatial(out, node_xy, need)
    return out
