"""Compiled whole-day passes of the downscaling driver (:mod:`.run`), each a numba kernel
with a numpy fallback that gives the same numbers: the static-anomaly accumulation and
mean, the combined uncertainty, and the day's flags and counts. Arrays are flat views of
the 1 km grid (``(H * W,)``)."""

from __future__ import annotations

import numpy as np

from ..accel import kernel, njit, prange
from ..series import FLAG_NODATA

#: flag values (DESIGN.md 3)
FLAG_OBSERVED, FLAG_SEAM, FLAG_LST_FILLED, FLAG_BOTH = 0, 1, 2, 3


def _accumulate_finite_numpy(acc: np.ndarray, cnt: np.ndarray, a: np.ndarray) -> None:
    ok = np.isfinite(a)
    acc[ok] += a[ok]
    cnt[ok] += 1


@njit(parallel=True)
def _accumulate_finite_numba(acc, cnt, a):  # pragma: no cover - compiled
    for i in prange(a.size):
        v = a[i]
        if np.isfinite(v):
            acc[i] += v
            cnt[i] += 1


#: in place, where ``a`` is finite: ``acc += a`` (float64) and ``cnt += 1`` (flat arrays)
accumulate_finite = kernel(_accumulate_finite_numba, _accumulate_finite_numpy, "accumulate_finite")


def _finite_mean_numpy(acc: np.ndarray, cnt: np.ndarray, out: np.ndarray) -> None:
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:] = np.where(cnt > 0, acc / cnt, np.nan).astype(np.float32)


@njit(parallel=True)
def _finite_mean_numba(acc, cnt, out):  # pragma: no cover - compiled
    for i in prange(out.size):
        out[i] = np.float32(acc[i] / cnt[i]) if cnt[i] > 0 else np.nan


#: ``out`` (float32) = ``acc / cnt`` where ``cnt > 0``, else NaN
finite_mean = kernel(_finite_mean_numba, _finite_mean_numpy, "finite_mean")


def _bound_counts_numpy(x: np.ndarray, lo: float, hi: float, lo_m: float, hi_m: float) -> tuple[int, int, int]:
    ok = np.isfinite(x)
    return (int((ok & ((x < lo) | (x > hi))).sum()), int((ok & (x < lo_m)).sum()), int((ok & (x > hi_m)).sum()))


@njit(parallel=True)
def _bound_counts_numba(x, lo, hi, lo_m, hi_m):  # pragma: no cover - compiled
    beyond = 0
    low = 0
    high = 0
    for i in prange(x.size):
        v = x[i]
        if np.isfinite(v):
            if v < lo or v > hi:
                beyond += 1
            if v < lo_m:
                low += 1
            if v > hi_m:
                high += 1
    return beyond, low, high


#: one pass over a flat float32 field: the finite values below ``lo`` or above ``hi``,
#: below ``lo_m`` and above ``hi_m`` (every bound float32, compared in float32 as numpy
#: compares a float32 array with a scalar)
bound_counts = kernel(_bound_counts_numba, _bound_counts_numpy, "bound_counts")


class FiniteMean:
    """Per-pixel mean of the finite values of a sequence of float32 arrays (NaN where
    none is finite), accumulated in float64 in the order given. The first array is held
    as it is (not copied: its non-finite values are set to NaN in place by :meth:`mean`);
    the accumulators (12 bytes a pixel) are allocated only when a second arrives, so the
    mean of one array is that array without faulting in fresh memory: the same numbers as
    :func:`accumulate_finite` and :func:`finite_mean` (``float32(float64(v) / 1) == v``)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._first: np.ndarray | None = None
        self._acc: np.ndarray | None = None
        self._cnt: np.ndarray | None = None

    def add(self, a: np.ndarray) -> None:
        """Accumulate ``a`` (any shape of ``size`` values; float32 for the held first)."""
        a = np.asarray(a).reshape(-1)
        if a.size != self.size:
            raise ValueError(f"an array of {a.size} values, expected {self.size}")
        if self._acc is None and self._first is None and a.dtype == np.float32:
            self._first = a
            return
        if self._acc is None:
            self._acc, self._cnt = np.zeros(self.size), np.zeros(self.size, dtype=np.int32)
            if self._first is not None:
                accumulate_finite(self._acc, self._cnt, self._first)
                self._first = None
        accumulate_finite(self._acc, self._cnt, a)

    def mean(self) -> np.ndarray:
        """The mean, float32 ``(size,)``; all NaN when nothing was added."""
        if self._first is not None:
            out = self._first if self._first.flags.writeable else self._first.copy()
            np.copyto(out, np.float32(np.nan), where=~np.isfinite(out))
            self._first = None
            return out
        out = np.empty(self.size, dtype=np.float32)
        if self._acc is None:
            out.fill(np.nan)
            return out
        finite_mean(self._acc, self._cnt, out)
        self._acc = self._cnt = None
        return out


def _add_variance_numpy(unc: np.ndarray, var: np.ndarray, out: np.ndarray) -> None:
    out[:] = np.sqrt(unc.astype(np.float64) ** 2 + var).astype(np.float32)


@njit(parallel=True)
def _add_variance_numba(unc, var, out):  # pragma: no cover - compiled
    for i in prange(out.size):
        u = np.float64(unc[i])
        out[i] = np.float32(np.sqrt(u * u + np.float64(var[i])))


#: ``out = sqrt(unc^2 + var)`` in float64, stored float32 (flat arrays)
add_variance = kernel(_add_variance_numba, _add_variance_numpy, "add_variance")


def _flag_pixels_numpy(field_, index, observed, lstf, unc, flags):
    valid = np.isfinite(field_)
    obs_px = np.zeros(field_.shape, dtype=bool)
    inside = index >= 0
    obs_px[inside] = observed[index[inside]]
    flags[:] = np.where(obs_px, FLAG_OBSERVED, FLAG_SEAM).astype(np.uint8)
    flags[lstf] += FLAG_LST_FILLED
    flags[~valid] = FLAG_NODATA
    unc[~valid] = np.nan
    return np.array([valid.sum(), (valid & ~obs_px).sum(), (valid & lstf).sum()], dtype=np.int64)


@njit(parallel=True)
def _flag_pixels_numba(field_, index, observed, lstf, unc, flags):  # pragma: no cover - compiled
    n_est = 0
    n_seam = 0
    n_lst = 0
    for i in prange(field_.size):
        if not np.isfinite(field_[i]):
            flags[i] = FLAG_NODATA
            unc[i] = np.nan
            continue
        c = index[i]
        obs = c >= 0 and observed[c]
        f = FLAG_OBSERVED if obs else FLAG_SEAM
        n_est += 1
        if not obs:
            n_seam += 1
        if lstf[i]:
            f += FLAG_LST_FILLED
            n_lst += 1
        flags[i] = f
    return np.array([n_est, n_seam, n_lst], dtype=np.int64)


#: in place: the pixels' flags (observed / seam, + LST gap-filled, nodata where the field
#: is NaN) and NaN uncertainty where the field is NaN; returns the counts of estimated,
#: seam and LST-filled pixels
flag_pixels = kernel(_flag_pixels_numba, _flag_pixels_numpy, "flag_pixels")
