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

from ..accel import kernel, njit, prange
from ..grid import Grid, same_crs, transform_points


def node_positions(
    fine: Grid, coarse: Grid, row0: int = 0, nrows: int | None = None, step: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional node coordinates ``(fr, fc)`` of fine pixel centres of rows
    ``row0 : row0 + nrows``, float64 ``(nrows, fine.width)``; NaN where untransformable.

    Between two CRSs, only a lattice of every ``step``-th pixel (plus the last row and
    column) is transformed exactly and the positions in between are interpolated
    bilinearly, like GDAL's approximate transformer (errors of metres on 36 km cells);
    ``step=1`` transforms every pixel.
    """
    nrows = fine.height - row0 if nrows is None else nrows
    inv = gdal.InvGeoTransform(coarse.transform)
    if same_crs(fine.crs_wkt, coarse.crs_wkt):
        x, y = fine.centres(row0, nrows)
    else:
        rows = np.unique(np.r_[np.arange(row0, row0 + nrows, max(step, 1)), row0 + nrows - 1])
        cols = np.unique(np.r_[np.arange(0, fine.width, max(step, 1)), fine.width - 1])
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        lx, ly = transform_points(*fine.xy(rr, cc), fine.crs_wkt, coarse.crs_wkt)
        if step <= 1 or (rows.size == nrows and cols.size == fine.width):
            x, y = lx, ly
        else:
            x = _lattice_interp(lx, rows - row0, cols, nrows, fine.width)
            y = _lattice_interp(ly, rows - row0, cols, nrows, fine.width)
    fc = inv[0] + x * inv[1] + y * inv[2] - 0.5
    fr = inv[3] + x * inv[4] + y * inv[5] - 0.5
    return fr, fc


def _lattice_interp(v: np.ndarray, rows: np.ndarray, cols: np.ndarray, nrows: int, ncols: int) -> np.ndarray:
    """Bilinear interpolation of lattice values ``v (len(rows), len(cols))`` to every pixel."""
    ri = np.clip(np.searchsorted(rows, np.arange(nrows), side="right") - 1, 0, max(rows.size - 2, 0))
    ci = np.clip(np.searchsorted(cols, np.arange(ncols), side="right") - 1, 0, max(cols.size - 2, 0))
    r1 = np.minimum(ri + 1, rows.size - 1)
    c1 = np.minimum(ci + 1, cols.size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tr = np.where(r1 > ri, (np.arange(nrows) - rows[ri]) / np.maximum(rows[r1] - rows[ri], 1), 0.0)
        tc = np.where(c1 > ci, (np.arange(ncols) - cols[ci]) / np.maximum(cols[c1] - cols[ci], 1), 0.0)
    top = v[ri][:, ci] * (1 - tc) + v[ri][:, c1] * tc
    bot = v[r1][:, ci] * (1 - tc) + v[r1][:, c1] * tc
    return top * (1 - tr)[:, None] + bot * tr[:, None]


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


def _interpolate_numpy(flat: np.ndarray, fr: np.ndarray, fc: np.ndarray, R: int, C: int) -> np.ndarray:
    idx, w = bilinear_weights(fr, fc, (R, C))
    out = (flat[idx] * w).sum(axis=1)
    out[~(np.isfinite(fr) & np.isfinite(fc))] = np.nan
    return out


def _interp_at_nb(flat, r, c, R, C):  # pragma: no cover - compiled
    """The bilinear value of the node field ``flat (R*C,)`` at fractional node position
    ``(r, c)`` (clamped at the edges), NaN at a NaN position; the arithmetic of
    :func:`_interpolate_numpy` (shared by every compiled kernel that interpolates)."""
    if not (np.isfinite(r) and np.isfinite(c)):
        return np.nan
    r0 = min(max(np.floor(r), 0.0), max(R - 2, 0))
    c0 = min(max(np.floor(c), 0.0), max(C - 2, 0))
    tr = min(max(r - r0, 0.0), 1.0) if R > 1 else 0.0
    tc = min(max(c - c0, 0.0), 1.0) if C > 1 else 0.0
    ir = np.int64(r0)
    ic = np.int64(c0)
    ir1 = min(ir + 1, R - 1)
    ic1 = min(ic + 1, C - 1)
    acc = flat[ir * C + ic] * ((1 - tr) * (1 - tc))
    acc += flat[ir * C + ic1] * ((1 - tr) * tc)
    acc += flat[ir1 * C + ic] * (tr * (1 - tc))
    acc += flat[ir1 * C + ic1] * (tr * tc)
    return acc


interp_at = njit()(_interp_at_nb)


def _interpolate_nb(flat, fr, fc, R, C):  # pragma: no cover - compiled
    m = fr.shape[0]
    out = np.empty(m)
    for i in prange(m):
        out[i] = interp_at(flat, np.float64(fr[i]), np.float64(fc[i]), R, C)
    return out


_interpolate_numba = njit(parallel=True)(_interpolate_nb) if interp_at is not None else None


_interpolate = kernel(_interpolate_numba, _interpolate_numpy, "interpolate")


def interpolate(values: np.ndarray, fr: np.ndarray, fc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear interpolation of a node field ``values`` (``shape`` or flat) at positions;
    float64 with the positions' shape, NaN at NaN positions (one compiled pass, no
    per-corner temporaries; the numpy fallback gives the same numbers)."""
    flat = np.ascontiguousarray(np.asarray(values, dtype=np.float64).ravel())
    R, C = int(shape[0]), int(shape[1])
    out = _interpolate(flat, np.ascontiguousarray(np.ravel(fr)), np.ascontiguousarray(np.ravel(fc)), R, C)
    return out.reshape(np.shape(fr))


def _add_interpolated_numpy(field, var, v, vv, fr, fc, R, C, block=1_000_000):
    for i0 in range(0, field.shape[0], block):
        f = field[i0 : i0 + block]
        ok = np.isfinite(f)
        r, c = fr[i0 : i0 + block][ok], fc[i0 : i0 + block][ok]
        f[ok] = (f[ok] + _interpolate_numpy(v, r, c, R, C)).astype(np.float32)
        out = np.full(f.shape, np.nan, dtype=np.float32)
        out[ok] = _interpolate_numpy(vv, r, c, R, C).astype(np.float32)
        var[i0 : i0 + block] = out


def _add_interpolated_nb(field, var, v, vv, fr, fc, R, C):  # pragma: no cover - compiled
    for i in prange(field.shape[0]):
        x = field[i]
        if np.isfinite(x):
            r = np.float64(fr[i])
            c = np.float64(fc[i])
            field[i] = np.float32(np.float64(x) + interp_at(v, r, c, R, C))
            var[i] = np.float32(interp_at(vv, r, c, R, C))
        else:
            var[i] = np.float32(np.nan)


_add_interpolated = kernel(njit(parallel=True)(_add_interpolated_nb) if interp_at is not None else None,
                           _add_interpolated_numpy, "add_interpolated")


def add_interpolated(field: np.ndarray, values: np.ndarray, variances: np.ndarray, fr: np.ndarray, fc: np.ndarray,
                     shape: tuple[int, int]) -> np.ndarray:
    """Add the node field ``values`` interpolated bilinearly to ``field`` (float32,
    C-contiguous, in place) where it is finite, and return the node field ``variances``
    interpolated there (float32, NaN elsewhere): one compiled pass, the numbers of
    :func:`interpolate` (the sum in float64, then rounded)."""
    R, C = int(shape[0]), int(shape[1])
    var = np.empty(field.shape, dtype=np.float32)
    as64 = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.float64).ravel())  # noqa: E731
    _add_interpolated(field.reshape(-1), var.reshape(-1), as64(values), as64(variances),
                      np.ascontiguousarray(np.ravel(fr)), np.ascontiguousarray(np.ravel(fc)), R, C)
    return var


def node_xy_metres(membership) -> np.ndarray:
    """Coarse cell centres ``(n_cells, 2)`` in metres, whatever the grids' CRSs: the fine
    grid's coordinates when it is projected (scaled by its linear unit), else a Lambert
    azimuthal equal-area projection centred on the fine grid (distances within a few
    thousand km are true to a fraction of a per cent)."""
    from osgeo import osr

    from ..grid import to_srs

    fine = membership.fine
    x, y = membership.coarse.centres()
    srs = to_srs(fine.crs_wkt)
    if srs.IsProjected():
        fx, fy = transform_points(x, y, membership.coarse.crs_wkt, fine.crs_wkt)
        unit = srs.GetLinearUnits() or 1.0
        return np.column_stack([np.ravel(fx) * unit, np.ravel(fy) * unit])
    # a geographic grid: its coordinates are longitude, latitude (GIS axis order)
    lon, lat = fine.xy(np.array([fine.height / 2.0]), np.array([fine.width / 2.0]), offset=0.0)
    laea = osr.SpatialReference()
    laea.ImportFromProj4(f"+proj=laea +lat_0={float(np.ravel(lat)[0]):.6f} +lon_0={float(np.ravel(lon)[0]):.6f} "
                         "+x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs")
    fx, fy = transform_points(x, y, membership.coarse.crs_wkt, laea.ExportToWkt())
    return np.column_stack([np.ravel(fx), np.ravel(fy)])


def node_spacing(node_xy: np.ndarray) -> float:
    """Median nearest-neighbour distance between distinct cell centres (m)."""
    from scipy.spatial import cKDTree

    pts = np.unique(node_xy[np.isfinite(node_xy).all(axis=1)], axis=0)
    if pts.shape[0] < 2:
        return 1.0
    d, _ = cKDTree(pts).query(pts, k=2)
    return float(np.median(d[:, 1]))
