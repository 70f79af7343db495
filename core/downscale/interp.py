"""Where 1 km pixels sit in the coarse grid, and bilinear interpolation of node fields.

Coarse *nodes* are the coarse cell centres: node ``(i, j)`` is the centre of cell
``(i, j)``. A fine pixel's fractional node coordinates ``(fr, fc)`` come from its centre
transformed into the coarse CRS and the inverse coarse geotransform, minus 0.5 (so a
pixel at the centre of cell ``(i, j)`` has ``fr = i, fc = j``). Works for any CRS pair
and rotated geotransforms. Interpolation is bilinear between the four surrounding nodes,
clamped (constant extrapolation) beyond the outermost nodes.
"""

from __future__ import annotations

import numpy as np
from osgeo import gdal

from ..grid import Grid, same_crs, transform_points


def node_positions(fine: Grid, coarse: Grid, row0: int = 0, nrows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fractional node coordinates ``(fr, fc)`` of fine pixel centres of rows
    ``row0 : row0 + nrows``, float64 ``(nrows, fine.width)``; NaN where untransformable."""
    x, y = fine.centres(row0, nrows)
    if not same_crs(fine.crs_wkt, coarse.crs_wkt):
        x, y = transform_points(x, y, fine.crs_wkt, coarse.crs_wkt)
    inv = gdal.InvGeoTransform(coarse.transform)
    fc = inv[0] + x * inv[1] + y * inv[2] - 0.5
    fr = inv[3] + x * inv[4] + y * inv[5] - 0.5
    return fr, fc


def bilinear_weights(fr: np.ndarray, fc: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Flat node indices ``(m, 4)`` int64 and weights ``(m, 4)`` float64 of the four nodes
    around each position (clamped at the grid edges; NaN positions get node 0 weight 0)."""
    R, C = shape
    fr = np.asarray(fr, dtype=np.float64).ravel()
    fc = np.asarray(fc, dtype=np.float64).ravel()
    bad = ~(np.isfinite(fr) & np.isfinite(fc))
    fr = np.where(bad, 0.0, fr)
    fc = np.where(bad, 0.0, fc)
    r0 = np.clip(np.floor(fr), 0, max(R - 2, 0))
    c0 = np.clip(np.floor(fc), 0, max(C - 2, 0))
    tr = np.clip(fr - r0, 0.0, 1.0) if R > 1 else np.zeros_like(fr)
    tc = np.clip(fc - c0, 0.0, 1.0) if C > 1 else np.zeros_like(fc)
    ir, ic = r0.astype(np.int64), c0.astype(np.int64)
    ir1, ic1 = np.minimum(ir + 1, R - 1), np.minimum(ic + 1, C - 1)
    idx = np.stack([ir * C + ic, ir * C + ic1, ir1 * C + ic, ir1 * C + ic1], axis=1)
    w = np.stack([(1 - tr) * (1 - tc), (1 - tr) * tc, tr * (1 - tc), tr * tc], axis=1)
    w[bad] = 0.0
    return idx, w


def interpolate(values: np.ndarray, fr: np.ndarray, fc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear interpolation of a node field ``values`` (``shape`` or flat) at positions;
    float64 with the positions' shape, NaN at NaN positions."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    idx, w = bilinear_weights(fr, fc, shape)
    out = (flat[idx] * w).sum(axis=1)
    out[~(np.isfinite(np.ravel(fr)) & np.isfinite(np.ravel(fc)))] = np.nan
    return out.reshape(np.shape(fr))
