"""Per-pixel kernels of the LST gap filler: numba implementations with numpy fallbacks.

Each public name is a :class:`~ssm_downscaling.core.accel.Kernel` bound to a compiled
implementation and a numpy one that give the same numbers (tested to 1e-5 K):

- :data:`window_sums` - weighted sums of a day stack over finite values (persistent anomaly),
- :data:`temporal_interp` - per-pixel linear interpolation in time with a maximum gap,
- :data:`idw_disk` - inverse-distance weighting of finite pixels within a radius,
- :data:`bilinear_gather`, :data:`bilinear_separable` - coarse fields to the pixels,
- :data:`block_moments`, :data:`block_count_sum`, :data:`cell_sums` - block and cell sums,
- :data:`assemble_day` - the output day and its flags.

The fused passes of the ``anomaly`` method are in :mod:`.daypass`.

Arrays are float32 ``(height, width)`` or ``(days, height, width)`` with NaN as missing.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from ..accel import kernel, njit, prange

# ---------------------------------------------------------------------------------------
# weighted sums over a window of days
# ---------------------------------------------------------------------------------------


#: int16 code of a missing value in a quantised day stack (see ``quantum`` below)
MISSING_Q = -32768


def _window_sums_numpy(stack: np.ndarray, weights: np.ndarray, quantum: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(sum_d w_d * x_d, sum_d w_d)`` over the valid ``x_d`` of ``stack`` (D, H, W).

    A float stack holds the values (NaN missing); an int16 stack holds ``round(x /
    quantum)`` with :data:`MISSING_Q` where missing, and the sums are in the units of
    ``x``. Returns two float32 ``(H, W)`` arrays; days with weight 0 are skipped.
    """
    num = np.zeros(stack.shape[1:], dtype=np.float64)
    den = np.zeros(stack.shape[1:], dtype=np.float64)
    for d in range(stack.shape[0]):
        w = float(weights[d])
        if w == 0.0:
            continue
        x = stack[d]
        ok = np.isfinite(x) & (x != MISSING_Q)
        num[ok] += w * (x[ok].astype(np.float64) * quantum)
        den[ok] += w
    return num.astype(np.float32), den.astype(np.float32)


@njit(parallel=True)
def _window_sums_numba(stack, weights, quantum=1.0):  # pragma: no cover - compiled
    nd, h, w = stack.shape
    num = np.zeros((h, w), dtype=np.float32)
    den = np.zeros((h, w), dtype=np.float32)
    days = np.flatnonzero(weights != 0.0)  # days of weight 0 are not even read
    for i in prange(h):
        s = np.zeros(w)
        t = np.zeros(w)
        for d in days:  # day by day along the row (contiguous reads), in day order per pixel
            wd = weights[d]
            for j in range(w):
                x = np.float64(stack[d, i, j])
                if x != MISSING_Q and np.isfinite(x):
                    s[j] += wd * (x * quantum)
                    t[j] += wd
        for j in range(w):
            num[i, j] = s[j]
            den[i, j] = t[j]
    return num, den


window_sums = kernel(_window_sums_numba, _window_sums_numpy, "window_sums")


# ---------------------------------------------------------------------------------------
# temporal linear interpolation
# ---------------------------------------------------------------------------------------


def _temporal_interp_numpy(stack: np.ndarray, offsets: np.ndarray, max_gap: int) -> np.ndarray:
    """Per-pixel linear interpolation in time at offset 0.

    ``stack`` (D, H, W) holds the days at calendar ``offsets`` (D,) relative to the day
    being filled (sorted, may include 0, which is ignored). The nearest finite value
    before (offset < 0) and after (offset > 0), each within ``max_gap`` days, are
    interpolated linearly; with only one of them its value is used; with none, NaN.
    """
    shape = stack.shape[1:]
    vb = np.full(shape, np.nan, dtype=np.float64)
    ob = np.zeros(shape, dtype=np.float64)
    va = np.full(shape, np.nan, dtype=np.float64)
    oa = np.zeros(shape, dtype=np.float64)
    for d in range(stack.shape[0]):  # ascending: later "before" days overwrite earlier ones
        o = int(offsets[d])
        if o < 0 and -o <= max_gap:
            ok = np.isfinite(stack[d])
            vb[ok] = stack[d][ok]
            ob[ok] = o
    for d in range(stack.shape[0] - 1, -1, -1):  # descending for "after"
        o = int(offsets[d])
        if o > 0 and o <= max_gap:
            ok = np.isfinite(stack[d])
            va[ok] = stack[d][ok]
            oa[ok] = o
    hb = np.isfinite(vb)
    ha = np.isfinite(va)
    out = np.full(shape, np.nan, dtype=np.float64)
    both = hb & ha
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(both, -ob / (oa - ob), 0.0)
    out[both] = vb[both] + (va[both] - vb[both]) * frac[both]
    out[hb & ~ha] = vb[hb & ~ha]
    out[ha & ~hb] = va[ha & ~hb]
    return out.astype(np.float32)


@njit(parallel=True)
def _temporal_interp_numba(stack, offsets, max_gap):  # pragma: no cover - compiled
    nd, h, w = stack.shape
    out = np.full((h, w), np.nan, dtype=np.float32)
    for i in prange(h):
        for j in range(w):
            vb = np.nan
            ob = 0.0
            for d in range(nd):
                o = offsets[d]
                if o < 0 and -o <= max_gap and np.isfinite(stack[d, i, j]):
                    vb = np.float64(stack[d, i, j])
                    ob = np.float64(o)
            va = np.nan
            oa = 0.0
            for d in range(nd - 1, -1, -1):
                o = offsets[d]
                if o > 0 and o <= max_gap and np.isfinite(stack[d, i, j]):
                    va = np.float64(stack[d, i, j])
                    oa = np.float64(o)
            if np.isfinite(vb) and np.isfinite(va):
                out[i, j] = vb + (va - vb) * (-ob / (oa - ob))
            elif np.isfinite(vb):
                out[i, j] = vb
            elif np.isfinite(va):
                out[i, j] = va
    return out


temporal_interp = kernel(_temporal_interp_numba, _temporal_interp_numpy, "temporal_interp")


# ---------------------------------------------------------------------------------------
# inverse-distance weighting within a disk
# ---------------------------------------------------------------------------------------


def idw_weights(radius_px: float, power: float) -> np.ndarray:
    """The IDW kernel: ``d**-power`` for ``0 < d <= radius_px`` (pixels), 0 elsewhere; float64."""
    r = int(math.floor(radius_px))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    d = np.hypot(yy, xx)
    k = np.zeros(d.shape, dtype=np.float64)
    ok = (d > 0) & (d <= radius_px)
    k[ok] = d[ok] ** (-power)
    return k


#: rows per strip of the FFT path of :func:`_idw_disk_numpy` (plus the radius on each side)
IDW_STRIP_ROWS = 1024


def _idw_disk_numpy(values: np.ndarray, targets: np.ndarray, radius_px: float, power: float) -> np.ndarray:
    """IDW estimate at ``targets`` (bool, H x W) from the finite ``values`` within ``radius_px``.

    ``sum(w * v) / sum(w)`` with ``w = d**-power`` over source pixels at distance
    ``0 < d <= radius_px``; NaN where no source is in range or outside ``targets``;
    float64 (so that both implementations agree far below float32 rounding).
    Computed as two FFT convolutions in float64 (about as fast for any radius), in strips
    of :data:`IDW_STRIP_ROWS` rows with the radius around them (the FFT buffers of a whole
    China-sized grid would take about 1.5 GB).
    """
    src = np.isfinite(values)
    out = np.full(values.shape, np.nan, dtype=np.float64)
    if not src.any() or not targets.any():
        return out
    ref = float(np.mean(values[src], dtype=np.float64))
    del src
    k = idw_weights(radius_px, power)
    r = k.shape[0] // 2
    # FFT round-off leaves ~1e-13 where the true weight sum is 0: the smallest real weight
    # sum is radius**-power, far above that
    tiny = 1e-6 * float(radius_px) ** (-power)
    h = values.shape[0]
    step = max(int(IDW_STRIP_ROWS), 1)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        if not targets[r0:r1].any():
            continue
        a0, a1 = max(0, r0 - r), min(h, r1 + r)  # the rows within reach (zeros beyond the grid)
        ok_src = np.isfinite(values[a0:a1])
        v = np.where(ok_src, values[a0:a1].astype(np.float64) - ref, 0.0)
        num = signal.fftconvolve(v, k, mode="same")[r0 - a0 : r1 - a0]
        den = signal.fftconvolve(ok_src.astype(np.float64), k, mode="same")[r0 - a0 : r1 - a0]
        ok = targets[r0:r1] & (den > tiny)
        o = out[r0:r1]
        o[ok] = num[ok] / den[ok] + ref
    return out


@njit()
def _idw_pixel(values, i, j, table, r, ref):  # pragma: no cover - compiled
    h, w = values.shape
    num = 0.0
    den = 0.0
    for di in range(max(-r, -i), min(r, h - 1 - i) + 1):
        ii = i + di
        for dj in range(max(-r, -j), min(r, w - 1 - j) + 1):
            wt = table[di + r, dj + r]
            if wt > 0.0:
                v = values[ii, j + dj]
                if np.isfinite(v):
                    num += wt * (v - ref)
                    den += wt
    if den > 0.0:
        return num / den + ref
    return np.nan


@njit(parallel=True)
def _idw_disk_numba(values, targets, radius_px, power):  # pragma: no cover - compiled
    h, w = values.shape
    out = np.full((h, w), np.nan, dtype=np.float64)
    r = int(np.floor(radius_px))
    table = np.zeros((2 * r + 1, 2 * r + 1))
    for di in range(-r, r + 1):
        for dj in range(-r, r + 1):
            d = np.sqrt(np.float64(di * di + dj * dj))
            if d > 0 and d <= radius_px:
                table[di + r, dj + r] = d ** (-power)
    # reference value (mean of the sources) as in the numpy path, for equal rounding
    s = 0.0
    n = 0
    for i in range(h):
        for j in range(w):
            if np.isfinite(values[i, j]):
                s += values[i, j]
                n += 1
    if n == 0:
        return out
    ref = s / n
    # the prange index may be unsigned: cast before negating it
    for i in prange(h):
        for j in range(w):
            if targets[i, j]:
                out[i, j] = _idw_pixel(values, np.int64(i), np.int64(j), table, r, ref)
    return out


idw_disk = kernel(_idw_disk_numba, _idw_disk_numpy, "idw_disk")


def idw_fill(values: np.ndarray, targets: np.ndarray, radius_px: float, power: float = 2.0) -> np.ndarray:
    """:data:`idw_disk`, by FFT convolution unless the direct sum is tiny.

    The direct (compiled) sum costs about ``n_targets * pi * radius**2`` operations; the
    two FFT convolutions cost about ``(H + 2r)(W + 2r) log(...)`` and win from a few
    million operations on (0.05 s against 6 s for a 360 x 360 day with a 50 px radius).
    Both give the same numbers (tested to 1e-5 K).
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    targets = np.ascontiguousarray(targets, dtype=np.bool_)
    cost = float(np.count_nonzero(targets)) * math.pi * radius_px * radius_px
    if cost > 2e6:
        return _idw_disk_numpy(values, targets, float(radius_px), float(power))
    return idw_disk(values, targets, float(radius_px), float(power))


# ---------------------------------------------------------------------------------------
# bilinear interpolation with precomputed positions
# ---------------------------------------------------------------------------------------


#: rows per block of the numpy fallbacks that work on full-size grids (bounded temporaries)
FALLBACK_ROWS = 256


def _bilinear_gather_numpy(padded: np.ndarray, base: np.ndarray, fu: np.ndarray, fv: np.ndarray) -> np.ndarray:
    """NaN-aware bilinear interpolation: ``padded`` (h+1, w+1) coarse values (edge-padded),
    ``base`` (H, W) flat index of the upper-left neighbour (-1 = no value), ``fu``/``fv``
    the fractional column/row offsets. float32 (H, W); NaN where no neighbour with weight.
    In blocks of :data:`FALLBACK_ROWS` rows (the float64 temporaries stay small)."""
    if base.ndim == 2 and base.shape[0] > FALLBACK_ROWS:
        out = np.empty(base.shape, dtype=np.float32)
        for r0 in range(0, base.shape[0], FALLBACK_ROWS):
            r1 = min(base.shape[0], r0 + FALLBACK_ROWS)
            out[r0:r1] = _bilinear_gather_numpy(padded, base[r0:r1], fu[r0:r1], fv[r0:r1])
        return out
    flat = padded.ravel()
    w1 = padded.shape[1]
    ok = base >= 0
    b = np.where(ok, base, 0)
    fu64 = fu.astype(np.float64)
    fv64 = fv.astype(np.float64)
    num = np.zeros(base.shape, dtype=np.float64)
    den = np.zeros(base.shape, dtype=np.float64)
    for off, wt in ((0, (1 - fv64) * (1 - fu64)), (1, (1 - fv64) * fu64), (w1, fv64 * (1 - fu64)), (w1 + 1, fv64 * fu64)):
        val = flat[b + off]
        good = ok & np.isfinite(val) & (wt > 0)
        num[good] += wt[good] * val[good]
        den[good] += wt[good]
    out = np.full(base.shape, np.nan, dtype=np.float32)
    has = den > 1e-9
    out[has] = (num[has] / den[has]).astype(np.float32)
    return out


@njit(parallel=True)
def _bilinear_gather_numba(padded, base, fu, fv):  # pragma: no cover - compiled
    flat = padded.ravel()
    w1 = padded.shape[1]
    h, w = base.shape
    out = np.full((h, w), np.nan, dtype=np.float32)
    for i in prange(h):
        for j in range(w):
            b = base[i, j]
            if b >= 0:
                u = np.float64(fu[i, j])
                v = np.float64(fv[i, j])
                num = 0.0
                den = 0.0
                wt = (1 - v) * (1 - u)
                x = flat[b]
                if wt > 0 and np.isfinite(x):
                    num += wt * x
                    den += wt
                wt = (1 - v) * u
                x = flat[b + 1]
                if wt > 0 and np.isfinite(x):
                    num += wt * x
                    den += wt
                wt = v * (1 - u)
                x = flat[b + w1]
                if wt > 0 and np.isfinite(x):
                    num += wt * x
                    den += wt
                wt = v * u
                x = flat[b + w1 + 1]
                if wt > 0 and np.isfinite(x):
                    num += wt * x
                    den += wt
                if den > 1e-9:
                    out[i, j] = num / den
    return out


bilinear_gather = kernel(_bilinear_gather_numba, _bilinear_gather_numpy, "bilinear_gather")


def _bilinear_separable_numpy(
    padded: np.ndarray, i0: np.ndarray, fv: np.ndarray, j0: np.ndarray, fu: np.ndarray
) -> np.ndarray:
    """NaN-aware bilinear interpolation on an axis-aligned lattice: output pixel (r, c) lies
    between rows ``i0[r], i0[r]+1`` (fraction ``fv[r]``) and columns ``j0[c], j0[c]+1``
    (fraction ``fu[c]``) of the edge-padded ``padded`` (h+1, w+1). float32 (H, W)."""
    ok = np.isfinite(padded)
    v = np.where(ok, padded, 0.0)
    m = ok.astype(np.float64)
    fv64 = fv.astype(np.float64)[:, None]
    fu64 = fu.astype(np.float64)[None, :]

    def interp(a: np.ndarray) -> np.ndarray:
        rows = a[i0] * (1 - fv64) + a[i0 + 1] * fv64
        return rows[:, j0] * (1 - fu64) + rows[:, j0 + 1] * fu64

    num = interp(v)
    den = interp(m)
    out = np.full(num.shape, np.nan, dtype=np.float32)
    has = den > 1e-9
    out[has] = (num[has] / den[has]).astype(np.float32)
    return out


@njit()
def _sep_at(padded, a, v, b, u):  # pragma: no cover - compiled
    """Bilinear value at row ``a + v``, column ``b + u`` of an edge-padded field, over its
    finite corners (NaN when their weights sum to ~0)."""
    num = 0.0
    den = 0.0
    wt = (1 - v) * (1 - u)
    x = padded[a, b]
    if np.isfinite(x):
        num += wt * x
        den += wt
    wt = (1 - v) * u
    x = padded[a, b + 1]
    if np.isfinite(x):
        num += wt * x
        den += wt
    wt = v * (1 - u)
    x = padded[a + 1, b]
    if np.isfinite(x):
        num += wt * x
        den += wt
    wt = v * u
    x = padded[a + 1, b + 1]
    if np.isfinite(x):
        num += wt * x
        den += wt
    if den > 1e-9:
        return np.float32(num / den)
    return np.float32(np.nan)


@njit(parallel=True)
def _bilinear_separable_numba(padded, i0, fv, j0, fu):  # pragma: no cover - compiled
    h = i0.shape[0]
    w = j0.shape[0]
    out = np.empty((h, w), dtype=np.float32)
    for r in prange(h):
        a = i0[r]
        v = np.float64(fv[r])
        for c in range(w):
            out[r, c] = _sep_at(padded, a, v, j0[c], np.float64(fu[c]))
    return out


bilinear_separable = kernel(_bilinear_separable_numba, _bilinear_separable_numpy, "bilinear_separable")


# ---------------------------------------------------------------------------------------
# block moments of a regression
# ---------------------------------------------------------------------------------------


def _block_moments_numpy(y: np.ndarray, x: np.ndarray, f: int) -> np.ndarray:
    """Sums over ``f x f`` blocks of ``(n, x, y, x^2, x y)`` over pixels where both are
    finite; float64 ``(5, ceil(H/f), ceil(W/f))``."""
    h, w = y.shape
    bh, bw = -(-h // f), -(-w // f)
    m = np.isfinite(y) & np.isfinite(x)
    yz = np.where(m, y, 0.0).astype(np.float64)
    xz = np.where(m, x, 0.0).astype(np.float64)
    out = np.empty((5, bh, bw))
    for k, v in enumerate((m.astype(np.float64), xz, yz, xz * xz, xz * yz)):
        pad = np.zeros((bh * f, bw * f))
        pad[:h, :w] = v
        out[k] = pad.reshape(bh, f, bw, f).sum(axis=(1, 3))
    return out


@njit()
def _add_moments(out, bi, bj, x, y):  # pragma: no cover - compiled
    """Add one pair to block ``(bi, bj)`` of ``out (5, bh, bw)``: count, sum x, sum y,
    sum x^2, sum x y (products in float64)."""
    out[0, bi, bj] += 1.0
    out[1, bi, bj] += x
    out[2, bi, bj] += y
    out[3, bi, bj] += np.float64(x) * x
    out[4, bi, bj] += np.float64(x) * y


@njit(parallel=True)
def _block_moments_numba(y, x, f):  # pragma: no cover - compiled
    h, w = y.shape
    bh = (h + f - 1) // f
    bw = (w + f - 1) // f
    out = np.zeros((5, bh, bw))
    for bi in prange(bh):
        for i in range(bi * f, min((bi + 1) * f, h)):
            for j in range(w):
                yy = y[i, j]
                xx = x[i, j]
                if np.isfinite(yy) and np.isfinite(xx):
                    _add_moments(out, bi, j // f, xx, yy)
    return out


block_moments = kernel(_block_moments_numba, _block_moments_numpy, "block_moments")


# ---------------------------------------------------------------------------------------
# NaN-aware area-weighted means per coarse cell (a background footprint's block means)
# ---------------------------------------------------------------------------------------

#: row chunks of :data:`cell_sums` (fixed, so the float sums do not depend on the threads)
CELL_SUM_CHUNKS = 8


def _cell_sums_numpy(values: np.ndarray, index: np.ndarray, row_w: np.ndarray, n: int) -> np.ndarray:
    """Sums per cell over the finite ``values`` (H, W) of pixels with ``index`` >= 0:
    float64 ``(3, n)`` = (sum w, sum w x, count). ``row_w`` (H,) pixel weight of each row
    (areas; ones for equal-area grids). Summed in blocks of :data:`FALLBACK_ROWS` rows."""
    out = np.zeros((3, n))
    for r0 in range(0, values.shape[0], FALLBACK_ROWS):
        r1 = min(values.shape[0], r0 + FALLBACK_ROWS)
        v = values[r0:r1]
        ok = (index[r0:r1] >= 0) & np.isfinite(v)
        cells = index[r0:r1][ok]
        w = np.broadcast_to(row_w[r0:r1, None], v.shape)[ok]
        out[0] += np.bincount(cells, weights=w, minlength=n)
        out[1] += np.bincount(cells, weights=w * v[ok].astype(np.float64), minlength=n)
        out[2] += np.bincount(cells, minlength=n)
    return out


@njit(parallel=True)
def _cell_sums_numba(values, index, row_w, n):  # pragma: no cover - compiled
    h, w = values.shape
    nc = CELL_SUM_CHUNKS
    part = np.zeros((nc, 3, n))
    step = (h + nc - 1) // nc
    for k in prange(nc):
        for i in range(k * step, min((k + 1) * step, h)):
            rw = row_w[i]
            for j in range(w):
                c = index[i, j]
                x = values[i, j]
                if c >= 0 and np.isfinite(x):
                    part[k, 0, c] += rw
                    part[k, 1, c] += rw * np.float64(x)
                    part[k, 2, c] += 1.0
    out = np.zeros((3, n))
    for k in range(nc):  # in chunk order: the same sums whatever the number of threads
        out += part[k]
    return out


cell_sums = kernel(_cell_sums_numba, _cell_sums_numpy, "cell_sums")


# ---------------------------------------------------------------------------------------
# NaN-aware block counts and sums (normalised Gaussian convolution on a block grid)
# ---------------------------------------------------------------------------------------


def _block_count_sum_numpy(values: np.ndarray, f: int) -> np.ndarray:
    """Over ``f x f`` blocks of ``values`` (H, W): the number of finite values and their
    sum, float64 ``(2, ceil(H/f), ceil(W/f))``."""
    h, w = values.shape
    bh, bw = -(-h // f), -(-w // f)
    m = np.isfinite(values)
    out = np.empty((2, bh, bw))
    for k, v in enumerate((m.astype(np.float64), np.where(m, values, 0.0).astype(np.float64))):
        pad = np.zeros((bh * f, bw * f))
        pad[:h, :w] = v
        out[k] = pad.reshape(bh, f, bw, f).sum(axis=(1, 3))
    return out


@njit(parallel=True)
def _block_count_sum_numba(values, f):  # pragma: no cover - compiled
    h, w = values.shape
    bh = (h + f - 1) // f
    bw = (w + f - 1) // f
    out = np.zeros((2, bh, bw))
    for bi in prange(bh):
        for i in range(bi * f, min((bi + 1) * f, h)):
            for j in range(w):
                x = values[i, j]
                if np.isfinite(x):
                    bj = j // f
                    out[0, bi, bj] += 1.0
                    out[1, bi, bj] += x
    return out


block_count_sum = kernel(_block_count_sum_numba, _block_count_sum_numpy, "block_count_sum")


# ---------------------------------------------------------------------------------------
# output assembly: observed pixels kept, estimates clipped, flags
# ---------------------------------------------------------------------------------------


def _assemble_numpy(lst, estimate, use_land, land, lo, hi, out, flags):
    """Fills ``out`` (float32) and ``flags`` (uint8) in place: observed (finite) ``lst``
    copied (flag 0); elsewhere, on ``land`` (all without ``use_land``), a finite
    ``estimate`` clipped to ``[lo, hi]`` (flag 1); else NaN (flag 255). Row blocks."""
    h = lst.shape[0]
    for r0 in range(0, h, 256):
        r1 = min(h, r0 + 256)
        x, e = lst[r0:r1], estimate[r0:r1]
        obs = np.isfinite(x)
        can = ~obs & np.isfinite(e)
        if use_land:
            can &= land[r0:r1]
        o = np.where(obs, x, np.nan).astype(np.float32)
        o[can] = np.clip(e[can], lo, hi)
        f = np.full(x.shape, 255, dtype=np.uint8)
        f[obs] = 0
        f[can] = 1
        out[r0:r1] = o
        flags[r0:r1] = f


@njit(parallel=True)
def _assemble_numba(lst, estimate, use_land, land, lo, hi, out, flags):  # pragma: no cover - compiled
    h, w = lst.shape
    for i in prange(h):
        for j in range(w):
            x = lst[i, j]
            e = estimate[i, j]
            if np.isfinite(x):
                out[i, j] = x
                flags[i, j] = 0
            elif np.isfinite(e) and (not use_land or land[i, j]):
                out[i, j] = min(max(e, lo), hi)
                flags[i, j] = 1
            else:
                out[i, j] = np.nan
                flags[i, j] = 255


assemble_day = kernel(_assemble_numba, _assemble_numpy, "assemble_day")
