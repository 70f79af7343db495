"""Procedural fractal noise: seeded 2-D gradient (Perlin-type) noise summed over octaves.

The noise is a pure function of map coordinates (km) and a seed, so any block of a grid
can be generated on its own and gives the same numbers as the whole grid. Grid kernels
take the centre of the first pixel and the pixel size, so no coordinate arrays are needed.

``fbm_grid(x0, y0, dx, nrows, ncols, scale_km, octaves, gain, seed)`` returns float32
``(nrows, ncols)`` with mean about 0 and standard deviation about 1 (over areas much larger
than ``scale_km``); ``scale_km`` is the wavelength of the first (largest) octave.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from ..accel import kernel, njit, prange
from .jit import jit_pair

_M32 = 0xFFFFFFFF
#: gradient directions (8 unit vectors) picked by the lattice hash
_GX = np.array([1.0, 0.70710678118654752, 0.0, -0.70710678118654752, -1.0, -0.70710678118654752, 0.0, 0.70710678118654752])
_GY = np.array([0.0, 0.70710678118654752, 1.0, 0.70710678118654752, 0.0, -0.70710678118654752, -1.0, -0.70710678118654752])
#: empirical standard deviation of one octave of this gradient noise (measured over 1e6 points)
_OCTAVE_SD = 0.218


def stable_seed(seed: int, *tags: object) -> int:
    """A non-negative 31-bit integer derived from ``seed`` and tags (stable across runs and
    platforms, unlike ``hash``)."""
    text = ":".join([str(int(seed))] + [str(t) for t in tags]).encode()
    return zlib.crc32(text) & 0x7FFFFFFF


def octaves_for(scale_km: float, finest_km: float = 2.0) -> int:
    """Number of octaves from wavelength ``scale_km`` down to about ``finest_km``."""
    return max(1, int(math.ceil(math.log2(max(scale_km / finest_km, 1.0)))) + 1)


def _norm(octaves: int, gain: float) -> float:
    s = sum(gain ** (2 * k) for k in range(octaves))
    return 1.0 / (_OCTAVE_SD * math.sqrt(s))


# ---------------------------------------------------------------------------------------
# numba implementation
# ---------------------------------------------------------------------------------------


@njit()
def _hash_nb(ix, iy, seed):  # pragma: no cover - compiled
    h = (ix * 374761393 + iy * 668265263 + seed * 2246822519) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    return h ^ (h >> 16)


@njit()
def _perlin_nb(x, y, seed, gx, gy):  # pragma: no cover - compiled
    fx = math.floor(x)
    fy = math.floor(y)
    ix = np.int64(fx)
    iy = np.int64(fy)
    xf = x - fx
    yf = y - fy
    u = xf * xf * xf * (xf * (xf * 6.0 - 15.0) + 10.0)
    v = yf * yf * yf * (yf * (yf * 6.0 - 15.0) + 10.0)
    h00 = _hash_nb(ix, iy, seed) & 7
    h10 = _hash_nb(ix + 1, iy, seed) & 7
    h01 = _hash_nb(ix, iy + 1, seed) & 7
    h11 = _hash_nb(ix + 1, iy + 1, seed) & 7
    n00 = gx[h00] * xf + gy[h00] * yf
    n10 = gx[h10] * (xf - 1.0) + gy[h10] * yf
    n01 = gx[h01] * xf + gy[h01] * (yf - 1.0)
    n11 = gx[h11] * (xf - 1.0) + gy[h11] * (yf - 1.0)
    a = n00 + u * (n10 - n00)
    b = n01 + u * (n11 - n01)
    return a + v * (b - a)


def _fbm_grid_py(x0, y0, dx, nrows, ncols, scale, octaves, gain, seed, norm, gx, gy):  # pragma: no cover
    out = np.empty((nrows, ncols), dtype=np.float32)
    for r in prange(nrows):
        y = y0 - r * dx
        for c in range(ncols):
            x = x0 + c * dx
            total = 0.0
            amp = 1.0
            freq = 1.0 / scale
            for k in range(octaves):
                sx = x * freq + 0.37 * k
                sy = y * freq + 0.61 * k
                total += amp * _perlin_nb(sx, sy, seed + 7919 * k, gx, gy)
                amp *= gain
                freq *= 2.0
            out[r, c] = total * norm
    return out


def _fbm_points_py(x, y, scale, octaves, gain, seed, norm, gx, gy):  # pragma: no cover
    n = x.size
    out = np.empty(n, dtype=np.float32)
    for i in prange(n):
        total = 0.0
        amp = 1.0
        freq = 1.0 / scale
        for k in range(octaves):
            total += amp * _perlin_nb(x[i] * freq + 0.37 * k, y[i] * freq + 0.61 * k, seed + 7919 * k, gx, gy)
            amp *= gain
            freq *= 2.0
        out[i] = total * norm
    return out


# ---------------------------------------------------------------------------------------
# numpy implementation (same arithmetic)
# ---------------------------------------------------------------------------------------


def _hash_np(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    h = (ix * 374761393 + iy * 668265263 + np.int64(seed) * 2246822519) & _M32
    h = ((h ^ (h >> 13)) * 1274126177) & _M32
    return h ^ (h >> 16)


def _perlin_np(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    fx = np.floor(x)
    fy = np.floor(y)
    ix = fx.astype(np.int64)
    iy = fy.astype(np.int64)
    xf = x - fx
    yf = y - fy
    u = xf * xf * xf * (xf * (xf * 6.0 - 15.0) + 10.0)
    v = yf * yf * yf * (yf * (yf * 6.0 - 15.0) + 10.0)
    h00 = _hash_np(ix, iy, seed) & 7
    h10 = _hash_np(ix + 1, iy, seed) & 7
    h01 = _hash_np(ix, iy + 1, seed) & 7
    h11 = _hash_np(ix + 1, iy + 1, seed) & 7
    n00 = _GX[h00] * xf + _GY[h00] * yf
    n10 = _GX[h10] * (xf - 1.0) + _GY[h10] * yf
    n01 = _GX[h01] * xf + _GY[h01] * (yf - 1.0)
    n11 = _GX[h11] * (xf - 1.0) + _GY[h11] * (yf - 1.0)
    a = n00 + u * (n10 - n00)
    b = n01 + u * (n11 - n01)
    return a + v * (b - a)


def _fbm_points_np(x, y, scale, octaves, gain, seed, norm, gx=None, gy=None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    total = np.zeros(x.shape, dtype=np.float64)
    amp = 1.0
    freq = 1.0 / scale
    for k in range(octaves):
        total += amp * _perlin_np(x * freq + 0.37 * k, y * freq + 0.61 * k, seed + 7919 * k)
        amp *= gain
        freq *= 2.0
    return (total * norm).astype(np.float32)


def _fbm_grid_np(x0, y0, dx, nrows, ncols, scale, octaves, gain, seed, norm, gx=None, gy=None) -> np.ndarray:
    out = np.empty((nrows, ncols), dtype=np.float32)
    xs = x0 + np.arange(ncols, dtype=np.float64) * dx
    step = max(1, 262144 // max(ncols, 1))  # bounded temporaries
    for r0 in range(0, nrows, step):
        r1 = min(nrows, r0 + step)
        ys = y0 - np.arange(r0, r1, dtype=np.float64) * dx
        xx, yy = np.meshgrid(xs, ys)
        out[r0:r1] = _fbm_points_np(xx, yy, scale, octaves, gain, seed, norm)
    return out


_fbm_grid_pair = jit_pair(_fbm_grid_py)
_fbm_points_pair = jit_pair(_fbm_points_py)


def _fbm_grid_nb(x0, y0, dx, nrows, ncols, scale, octaves, gain, seed, norm, gx, gy):
    return _fbm_grid_pair(nrows * ncols * octaves, x0, y0, dx, nrows, ncols, scale, octaves, gain, seed, norm, gx, gy)


def _fbm_points_nb(x, y, scale, octaves, gain, seed, norm, gx, gy):
    return _fbm_points_pair(x.size * octaves, x, y, scale, octaves, gain, seed, norm, gx, gy)


_fbm_grid = kernel(_fbm_grid_nb if _fbm_grid_pair else None, _fbm_grid_np, "fbm_grid")
_fbm_points = kernel(_fbm_points_nb if _fbm_points_pair else None, _fbm_points_np, "fbm_points")


# ---------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------


def fbm_grid(
    x0: float,
    y0: float,
    dx: float,
    nrows: int,
    ncols: int,
    scale_km: float,
    octaves: int,
    gain: float,
    seed: int,
) -> np.ndarray:
    """Fractal noise on a north-up grid; float32 ``(nrows, ncols)``, about N(0, 1).

    ``(x0, y0)`` is the centre of pixel (0, 0) in km, ``dx`` the pixel size in km (rows go
    south). Octave ``k`` has wavelength ``scale_km / 2**k`` and amplitude ``gain**k``.
    """
    norm = _norm(octaves, gain)
    return _fbm_grid(
        float(x0), float(y0), float(dx), int(nrows), int(ncols), float(scale_km), int(octaves), float(gain),
        int(seed), norm, _GX, _GY,
    )


def fbm_points(x: np.ndarray, y: np.ndarray, scale_km: float, octaves: int, gain: float, seed: int) -> np.ndarray:
    """Fractal noise at points (km coordinates, any equal shapes); float32, about N(0, 1)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    out = _fbm_points(x.ravel(), y.ravel(), float(scale_km), int(octaves), float(gain), int(seed),
                      _norm(octaves, gain), _GX, _GY)
    return np.asarray(out).reshape(x.shape)


def lattice_for(x0: float, y0: float, dx: float, nrows: int, ncols: int, step_km: float) -> tuple[float, float, int, int]:
    """The lattice of spacing ``step_km`` (anchored at multiples of it) that covers a grid
    block: ``(lx0, ly0, lrows, lcols)`` with ``(lx0, ly0)`` its top-left node (km)."""
    i0 = int(np.floor(x0 / step_km))
    i1 = int(np.floor((x0 + (ncols - 1) * dx) / step_km)) + 1
    j0 = int(np.floor((y0 - (nrows - 1) * dx) / step_km))
    j1 = int(np.floor(y0 / step_km)) + 1
    return i0 * step_km, j1 * step_km, j1 - j0 + 1, i1 - i0 + 1


def _bilinear_np(lat, lx0, ly0, step, x0, y0, dx, nrows, ncols):
    fx = (x0 + np.arange(ncols, dtype=np.float64) * dx - lx0) / step
    cx = np.clip(np.floor(fx).astype(np.int64), 0, lat.shape[1] - 2)
    tx = (fx - cx).astype(np.float32)
    fy = (ly0 - (y0 - np.arange(nrows, dtype=np.float64) * dx)) / step
    cy = np.clip(np.floor(fy).astype(np.int64), 0, lat.shape[0] - 2)
    ty = (fy - cy).astype(np.float32)[:, None]
    rows = lat[:, cx] * (1 - tx) + lat[:, cx + 1] * tx  # along x first: (lattice rows, ncols)
    out = rows[cy]
    out *= 1 - ty
    out += rows[cy + 1] * ty
    return out


def _bilinear_py(lat, lx0, ly0, step, x0, y0, dx, nrows, ncols):  # pragma: no cover - compiled
    out = np.empty((nrows, ncols), dtype=np.float32)
    lr = lat.shape[0]
    lc = lat.shape[1]
    for r in prange(nrows):
        fy = (ly0 - (y0 - r * dx)) / step
        cy = min(max(int(math.floor(fy)), 0), lr - 2)
        ty = fy - cy
        for c in range(ncols):
            fx = (x0 + c * dx - lx0) / step
            cx = min(max(int(math.floor(fx)), 0), lc - 2)
            tx = fx - cx
            top = lat[cy, cx] * (1.0 - tx) + lat[cy, cx + 1] * tx
            bot = lat[cy + 1, cx] * (1.0 - tx) + lat[cy + 1, cx + 1] * tx
            out[r, c] = top * (1.0 - ty) + bot * ty
    return out


_bilinear_pair = jit_pair(_bilinear_py)


def _bilinear_nb(lat, lx0, ly0, step, x0, y0, dx, nrows, ncols):
    return _bilinear_pair(nrows * ncols * 2, lat, lx0, ly0, step, x0, y0, dx, nrows, ncols)


_bilinear = kernel(_bilinear_nb if _bilinear_pair else None, _bilinear_np, "bilinear")


def from_lattice(lat: np.ndarray, lx0: float, ly0: float, step_km: float,
                 x0: float, y0: float, dx: float, nrows: int, ncols: int) -> np.ndarray:
    """Bilinear interpolation of lattice values (from :func:`lattice_for`) to the pixels of
    a block; float32 ``(nrows, ncols)``."""
    lat = np.ascontiguousarray(lat, dtype=np.float32)
    return _bilinear(lat, float(lx0), float(ly0), float(step_km), float(x0), float(y0), float(dx), int(nrows),
                     int(ncols))


def fbm_lattice(
    x0: float,
    y0: float,
    dx: float,
    nrows: int,
    ncols: int,
    scale_km: float,
    octaves: int,
    gain: float,
    seed: int,
    step_km: float,
) -> np.ndarray:
    """Like :func:`fbm_grid` for smooth fields: the noise is evaluated on a lattice of
    ``step_km`` anchored at multiples of ``step_km`` (so any block gives the same values)
    and interpolated bilinearly to the pixels. Much cheaper when ``step_km >> dx``."""
    lx0, ly0, lr, lc = lattice_for(x0, y0, dx, nrows, ncols, step_km)
    lat = fbm_grid(lx0, ly0, step_km, lr, lc, scale_km, octaves, gain, seed)
    return from_lattice(lat, lx0, ly0, step_km, x0, y0, dx, nrows, ncols)
