"""The per-pixel passes of the ``anomaly`` filler over one day, fused.

A day of the anomaly method (:mod:`.anomaly`) is a few per-pixel formulas around two
block-grid fits. Written with whole-grid numpy expressions they need a dozen full-size
temporaries (a China-sized day: 80 MB each); here they are three passes, each a numba
kernel (one parallel sweep, no temporaries) with a numpy fallback that works in row
blocks of :data:`ROWS` rows (bounded memory). Both give the numbers of the plain
whole-grid formulas: the same float32 operations in the same order, and block sums
accumulated in the same order as :func:`.kernels.block_moments` and
:func:`.kernels.block_count_sum`.

1. :data:`prepare_pass` - ``B1 = B + g dz``, ``A0 = LST - B1`` on clear pixels, the
   persistent anomaly ``P = (sum w x + k prior) / (sum w + k)`` from the window's day
   stack, ``y = A0 - P``, and the block sums of the regression of ``y`` on ``S[c]``;
   writes ``A0`` (``mode`` 0, for :meth:`add`) or ``y`` and ``B1 + kc P`` (``mode`` 1,
   for :meth:`estimate`).
2. :data:`estimate_pass` - with the fitted ``a`` and ``D`` (block fields, bilinear to
   the pixels): ``est = B1 + kc P + a + (g_c - g) dz - D (1 - S)``, in place, and the
   remaining anomaly ``y - a - D S`` (in place of ``y``) with its block counts and sums;
   :data:`residual_pass` instead stores ``A0 - a - D S`` into the day stack (:meth:`add`).
3. :data:`add_upsampled` - ``est += kc * r`` with ``r`` the interpolated remaining anomaly.

Arrays are float32 ``(H, W)``, NaN missing; ``S[c]`` NaN counts as 0. Arguments that a
day does not use are passed as ``(1, 1)`` dummies with their flag off.
"""

from __future__ import annotations

import numpy as np

from ..accel import kernel, njit, prange
from .kernels import (
    MISSING_Q,
    _add_moments,
    _bilinear_separable_numpy,
    _block_count_sum_numpy,
    _block_moments_numpy,
    _sep_at,
)
from .methods import quantise

#: rows per block of the numpy fallbacks (rounded to a multiple of the block factor)
ROWS = 256


def _row_step(f: int) -> int:
    return max(f, (ROWS // f) * f)


# ---------------------------------------------------------------------------------------
# bilinear interpolation of an edge-padded block field (kernels._sep_at at one pixel)
# ---------------------------------------------------------------------------------------


def _sep_rows(padded: np.ndarray, i0: np.ndarray, fv: np.ndarray, j0: np.ndarray, fu: np.ndarray,
              r0: int, r1: int) -> np.ndarray:
    """Rows ``r0:r1`` of :func:`.kernels._bilinear_separable_numpy` (float32)."""
    return _bilinear_separable_numpy(padded, i0[r0:r1], fv[r0:r1], j0, fu)


# ---------------------------------------------------------------------------------------
# pass 1: anomalies, persistent anomaly, regression block sums
# ---------------------------------------------------------------------------------------


def _prepare_pass_numpy(lst, bg, use_dz, dz0, g, stack, slots, weights, quantum, k, use_prior, nd, pa, pb,
                        use_s, s, f, kc, mode, out1, out2):
    """Pass 1 in row blocks (see the module docstring); returns the block sums
    ``(n, sum S, sum y, sum S^2, sum S y)`` float64 ``(5, ceil(H/f), ceil(W/f))``."""
    h, w = lst.shape
    bh, bw = -(-h // f), -(-w // f)
    sums = np.zeros((5, bh, bw))
    g32, k32, kc32 = np.float32(g), np.float32(k), np.float32(kc)
    step = _row_step(f)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        x = lst[r0:r1]
        b1 = bg[r0:r1] + g32 * dz0[r0:r1] if use_dz else bg[r0:r1].astype(np.float32, copy=False)
        clear = np.isfinite(x) & np.isfinite(b1)
        a0 = np.where(clear, x - b1, np.float32(np.nan)).astype(np.float32)
        num = np.zeros((r1 - r0, w), dtype=np.float64)
        den = np.zeros((r1 - r0, w), dtype=np.float64)
        for sl, wd in zip(slots, weights):
            v = stack[sl, r0:r1]
            ok = np.isfinite(v) & (v != MISSING_Q)
            num[ok] += wd * (v[ok].astype(np.float64) * quantum)
            den[ok] += wd
        num32, den32 = num.astype(np.float32), den.astype(np.float32)
        prior = (pa + pb * nd[r0:r1] if use_prior else np.zeros((r1 - r0, w), np.float32))
        if use_prior:
            prior = np.where(np.isfinite(nd[r0:r1]), prior, pa).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(den32 + k32 > 0, (num32 + k32 * prior) / (den32 + k32), prior).astype(np.float32)
        y = (a0 - p).astype(np.float32)
        if mode == 0:
            out1[r0:r1] = a0
        else:
            out1[r0:r1] = y
            out2[r0:r1] = b1 + kc32 * p
        sv = np.nan_to_num(s[r0:r1], nan=0.0) if use_s else np.zeros((r1 - r0, w), np.float32)
        sums[:, r0 // f: -(-r1 // f)] = _block_moments_numpy(y, sv, f)
    return sums


@njit(parallel=True)
def _prepare_pass_numba(lst, bg, use_dz, dz0, g, stack, slots, weights, quantum, k, use_prior, nd, pa, pb,
                        use_s, s, f, kc, mode, out1, out2):  # pragma: no cover - compiled
    h, w = lst.shape
    bh = (h + f - 1) // f
    bw = (w + f - 1) // f
    sums = np.zeros((5, bh, bw))
    g32 = np.float32(g)
    k32 = np.float32(k)
    kc32 = np.float32(kc)
    pa32 = np.float32(pa)
    pb32 = np.float32(pb)
    nslot = slots.shape[0]
    for bi in prange(bh):
        num = np.empty(w)
        den = np.empty(w)
        for i in range(bi * f, min((bi + 1) * f, h)):
            num[:] = 0.0
            den[:] = 0.0
            for q in range(nslot):  # slot by slot along the row: the order of window_sums
                sl = slots[q]
                wd = weights[q]
                for j in range(w):
                    x = np.float64(stack[sl, i, j])
                    if x != MISSING_Q and np.isfinite(x):
                        num[j] += wd * (x * quantum)
                        den[j] += wd
            for j in range(w):
                x = lst[i, j]
                if use_dz:
                    b1 = bg[i, j] + g32 * dz0[i, j]
                else:
                    b1 = bg[i, j]
                if np.isfinite(x) and np.isfinite(b1):
                    a0 = x - b1
                else:
                    a0 = np.float32(np.nan)
                prior = np.float32(0.0)
                if use_prior:
                    if np.isfinite(nd[i, j]):
                        prior = pa32 + pb32 * nd[i, j]
                    else:
                        prior = pa32
                n32 = np.float32(num[j])
                d32 = np.float32(den[j])
                if d32 + k32 > 0:
                    p = (n32 + k32 * prior) / (d32 + k32)
                else:
                    p = prior
                y = a0 - p
                if mode == 0:
                    out1[i, j] = a0
                else:
                    out1[i, j] = y
                    out2[i, j] = b1 + kc32 * p
                sv = np.float32(0.0)
                if use_s:
                    sv = s[i, j]
                    if not np.isfinite(sv):
                        sv = np.float32(0.0)
                if np.isfinite(y):
                    _add_moments(sums, bi, j // f, sv, y)
    return sums


prepare_pass = kernel(_prepare_pass_numba, _prepare_pass_numpy, "prepare_pass")


# ---------------------------------------------------------------------------------------
# pass 2: the estimate and the remaining anomaly (estimate) or the stored anomaly (add)
# ---------------------------------------------------------------------------------------


def _estimate_pass_numpy(est, y, use_s, s, i0, fv, j0, fu, pad_a, pad_d, use_cdz, cdz, dz0, f2):
    """Pass 2 of :meth:`estimate` in row blocks: ``est`` (holding ``B1 + kc P``) becomes the
    estimate before the remaining anomaly, ``y`` the remaining anomaly; returns its block
    counts and sums float64 ``(2, ceil(H/f2), ceil(W/f2))``."""
    h, w = est.shape
    out = np.zeros((2, -(-h // f2), -(-w // f2)))
    cdz32 = np.float32(cdz)
    step = _row_step(f2)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        a_f = _sep_rows(pad_a, i0, fv, j0, fu, r0, r1)
        e = est[r0:r1] + a_f
        if use_cdz:
            e += cdz32 * dz0[r0:r1]
        resid = y[r0:r1] - a_f
        if use_s:
            d_f = _sep_rows(pad_d, i0, fv, j0, fu, r0, r1)
            sv = np.nan_to_num(s[r0:r1], nan=0.0)
            e -= d_f * (np.float32(1.0) - sv)
            resid -= d_f * sv
        est[r0:r1] = e
        y[r0:r1] = resid
        out[:, r0 // f2: -(-r1 // f2)] = _block_count_sum_numpy(resid, f2)
    return out


@njit(parallel=True)
def _estimate_pass_numba(est, y, use_s, s, i0, fv, j0, fu, pad_a, pad_d, use_cdz, cdz, dz0, f2):  # pragma: no cover
    h, w = est.shape
    bh = (h + f2 - 1) // f2
    bw = (w + f2 - 1) // f2
    out = np.zeros((2, bh, bw))
    cdz32 = np.float32(cdz)
    one = np.float32(1.0)
    for bi in prange(bh):
        for i in range(bi * f2, min((bi + 1) * f2, h)):
            a = i0[i]
            v = np.float64(fv[i])
            for j in range(w):
                b = j0[j]
                u = np.float64(fu[j])
                a_f = _sep_at(pad_a, a, v, b, u)
                e = est[i, j] + a_f
                if use_cdz:
                    e = e + cdz32 * dz0[i, j]
                r = y[i, j] - a_f
                if use_s:
                    sv = s[i, j]
                    if not np.isfinite(sv):
                        sv = np.float32(0.0)
                    d_f = _sep_at(pad_d, a, v, b, u)
                    e = e - d_f * (one - sv)
                    r = r - d_f * sv
                est[i, j] = e
                y[i, j] = r
                if np.isfinite(r):
                    bj = j // f2
                    out[0, bi, bj] += 1.0
                    out[1, bi, bj] += r
    return out


estimate_pass = kernel(_estimate_pass_numba, _estimate_pass_numpy, "estimate_pass")


def _residual_pass_numpy(a0, use_s, s, i0, fv, j0, fu, pad_a, pad_d, codes, quantum, out):
    """Pass 2 of :meth:`add`: ``A0 - a - D S`` into ``out`` (H, W): with ``codes``, int16
    quanta of ``quantum`` (as :func:`.methods.quantise`), else float32."""
    h, w = a0.shape
    for r0 in range(0, h, ROWS):
        r1 = min(h, r0 + ROWS)
        e = a0[r0:r1] - _sep_rows(pad_a, i0, fv, j0, fu, r0, r1)
        if use_s:
            e -= _sep_rows(pad_d, i0, fv, j0, fu, r0, r1) * np.nan_to_num(s[r0:r1], nan=0.0)
        out[r0:r1] = quantise(e, quantum) if codes else e


@njit(parallel=True)
def _residual_pass_numba(a0, use_s, s, i0, fv, j0, fu, pad_a, pad_d, codes, quantum, out):  # pragma: no cover
    h, w = a0.shape
    q32 = np.float32(quantum)
    for i in prange(h):
        a = i0[i]
        v = np.float64(fv[i])
        for j in range(w):
            b = j0[j]
            u = np.float64(fu[j])
            e = a0[i, j] - _sep_at(pad_a, a, v, b, u)
            if use_s:
                sv = s[i, j]
                if not np.isfinite(sv):
                    sv = np.float32(0.0)
                e = e - _sep_at(pad_d, a, v, b, u) * sv
            if codes:
                if not np.isfinite(e):
                    out[i, j] = MISSING_Q
                else:
                    c = e / q32
                    if not np.isfinite(c):
                        c = np.float32(0.0)
                    c = min(max(c, np.float32(-32767.0)), np.float32(32767.0))
                    out[i, j] = np.rint(c)
            else:
                out[i, j] = e


residual_pass = kernel(_residual_pass_numba, _residual_pass_numpy, "residual_pass")


# ---------------------------------------------------------------------------------------
# pass 3: add a scaled block field, bilinear to the pixels, NaN as 0
# ---------------------------------------------------------------------------------------


def _add_upsampled_numpy(est, i0, fv, j0, fu, padded, scale):
    """``est += float32(scale) * nan_to_num(upsampled)`` in place, in row blocks."""
    h = est.shape[0]
    sc = np.float32(scale)
    for r0 in range(0, h, ROWS):
        r1 = min(h, r0 + ROWS)
        est[r0:r1] += sc * np.nan_to_num(_sep_rows(padded, i0, fv, j0, fu, r0, r1), nan=0.0)


@njit(parallel=True)
def _add_upsampled_numba(est, i0, fv, j0, fu, padded, scale):  # pragma: no cover - compiled
    h, w = est.shape
    sc = np.float32(scale)
    for i in prange(h):
        a = i0[i]
        v = np.float64(fv[i])
        for j in range(w):
            r = _sep_at(padded, a, v, j0[j], np.float64(fu[j]))
            if np.isfinite(r):
                est[i, j] = est[i, j] + sc * r


add_upsampled = kernel(_add_upsampled_numba, _add_upsampled_numpy, "add_upsampled")
