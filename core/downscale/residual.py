"""Residual correction: make every coarse cell's 1 km mean equal its target, then clip.

For each coarse cell ``c`` with valid 1 km pixels the caller gives a mean correction
``delta_c`` (observed cells: coarse value minus the cell mean of the model prediction;
seam cells: a residual borrowed from neighbouring days, or 0). Three ways to spread it:

* ``"interp"`` (default): the cell residuals, placed at the cell centres, are interpolated
  bilinearly to 1 km and added; a constant shift per cell then makes the means exact.
* ``"smooth"``: node values ``r`` are solved so that the cell means of their bilinear
  interpolation equal ``delta`` exactly (a sparse system with nine diagonals; nodes without
  pixels follow the mean of their neighbours); smoothest across cell edges, but it
  amplifies cell-to-cell noise of the coarse product (a checkerboard mode by up to 4x).
* ``"cell"``: a constant per cell.

The final per-cell shift makes the means exact in every mode. Values are then clipped to
the physical range with the clipped amount redistributed within the cell (in proportion to
each pixel's room to the bound), which keeps the means exact whenever the target lies
inside the range.

Means are area-weighted like :meth:`Membership.aggregate` (``weights`` = pixel areas, or
None for an equal-area fine grid). Everything works in row blocks on full-day arrays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..accel import kernel, njit, prange
from .interp import bilinear_weights

log = logging.getLogger(__name__)

_OFFSETS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]


@dataclass
class CorrectionInfo:
    """What the correction did: cells constrained, whether the smooth solve worked,
    the largest final per-cell shift (m3/m3), pixels clipped, cells whose target lay
    outside the range."""

    n_cells: int = 0
    smooth_ok: bool = True
    max_shift: float = 0.0
    clipped: int = 0
    targets_out_of_range: int = 0


def _blocks(height: int, width: int, max_pixels: int = 1_000_000) -> list[tuple[int, int]]:
    rows = max(1, max_pixels // max(width, 1))
    return [(r, min(rows, height - r)) for r in range(0, height, rows)]


def _cell_sums_numpy(vals, idx, mask, use_mask, w, use_w, vpart, wpart, cnt):
    ok = (idx >= 0) & np.isfinite(vals).all(axis=1)
    if use_mask:
        ok &= mask
    cells = idx[ok]
    ww = w[ok] if use_w else None
    wpart += np.bincount(cells, weights=ww, minlength=wpart.size)
    cnt += np.bincount(cells, minlength=cnt.size)
    for j in range(vals.shape[1]):
        v = vals[ok, j].astype(np.float64)
        vpart[:, j] += np.bincount(cells, weights=v * ww if use_w else v, minlength=wpart.size)


@njit()
def _cell_sums_numba(vals, idx, mask, use_mask, w, use_w, vpart, wpart, cnt):  # pragma: no cover - compiled
    m, k = vals.shape
    for i in range(m):
        c = idx[i]
        if c < 0 or (use_mask and not mask[i]):
            continue
        fin = True
        for j in range(k):
            if not np.isfinite(vals[i, j]):
                fin = False
                break
        if not fin:
            continue
        wi = w[i] if use_w else 1.0
        wpart[c] += wi
        cnt[c] += 1
        for j in range(k):
            x = np.float64(vals[i, j])
            vpart[c, j] += x * wi if use_w else x


_cell_sums = kernel(_cell_sums_numba, _cell_sums_numpy, "cell_sums")


def cell_sums(vals: np.ndarray, idx: np.ndarray, n_cells: int, mask: np.ndarray | None = None,
              weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per coarse cell, over the pixels ``i`` with ``idx[i] >= 0``, ``mask[i]`` (when
    given) and every ``vals[i, :]`` finite: the (weighted) sums of ``vals (m, k)``
    ``(n_cells, k)``, the weight sums ``(n_cells,)`` (pixel counts without ``weights``)
    and the pixel counts (int64). Sums run in pixel order from zero (as ``np.bincount``),
    in one compiled pass."""
    vals = vals.reshape(vals.shape[0], -1)
    k = vals.shape[1]
    vpart = np.zeros((n_cells, k))
    wpart = np.zeros(n_cells)
    cnt = np.zeros(n_cells, dtype=np.int64)
    use_mask, use_w = mask is not None, weights is not None
    _cell_sums(vals, np.ascontiguousarray(idx.ravel()), mask.ravel() if use_mask else np.zeros(1, dtype=bool),
               use_mask, np.ascontiguousarray(weights, dtype=np.float64).ravel() if use_w else np.zeros(1), use_w,
               vpart, wpart, cnt)
    return vpart, wpart, cnt


def _block_cell_sums_numpy(values, index, weights, use_w, bounds, vpart, wpart):
    for b in range(bounds.size - 1):
        r0, r1 = bounds[b], bounds[b + 1]
        w = weights[r0:r1] if use_w else None
        vp, wp, _ = cell_sums(values[r0:r1].reshape(-1, 1), index[r0:r1], vpart.shape[1], weights=w)
        vpart[b] = vp[:, 0]
        wpart[b] = wp


@njit(parallel=True)
def _block_cell_sums_numba(values, index, weights, use_w, bounds, vpart, wpart):  # pragma: no cover - compiled
    W = values.shape[1]
    for b in prange(bounds.size - 1):
        for r in range(bounds[b], bounds[b + 1]):
            for col in range(W):
                c = index[r, col]
                if c < 0:
                    continue
                x = np.float64(values[r, col])
                if not np.isfinite(x):
                    continue
                if use_w:
                    wi = weights[r, col]
                    wpart[b, c] += wi
                    vpart[b, c] += x * wi
                else:
                    wpart[b, c] += 1.0
                    vpart[b, c] += x


_block_cell_sums = kernel(_block_cell_sums_numba, _block_cell_sums_numpy, "block_cell_sums")


def cell_means(values: np.ndarray, index: np.ndarray, weights: np.ndarray | None, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted mean of finite ``values (H, W)`` per cell and the weight sums, float64
    ``(n_cells,)``. Each block of about a million pixels is summed from zero in pixel order
    (the blocks in parallel) and the blocks' sums are added in block order: the same
    numbers on any number of threads, and from the numpy fallback."""
    H, W = values.shape
    blocks = _blocks(H, W)
    bounds = np.array([r0 for r0, _ in blocks] + [H], dtype=np.int64)
    vpart = np.zeros((len(blocks), n_cells))
    wpart = np.zeros((len(blocks), n_cells))
    use_w = weights is not None
    w = np.broadcast_to(weights, values.shape) if use_w else np.zeros((1, 1))
    _block_cell_sums(values, index, w, use_w, bounds, vpart, wpart)
    wsum = np.zeros(n_cells)
    vsum = np.zeros(n_cells)
    for b in range(len(blocks)):
        wsum += wpart[b]
        vsum += vpart[b]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = vsum / wsum
    mean[wsum <= 0] = np.nan
    return mean, wsum


def _interp_matrix(valid, index, weights, fr, fc, shape) -> tuple[np.ndarray, np.ndarray]:
    """``A9 (n_cells, 9)``: cell means of the bilinear basis function of each neighbouring node."""
    n = shape[0] * shape[1]
    C = shape[1]
    acc = np.zeros(n * 9)
    wsum = np.zeros(n)
    H, W = valid.shape
    for r0, nr in _blocks(H, W):
        ok = valid[r0 : r0 + nr] & (index[r0 : r0 + nr] >= 0)
        if not ok.any():
            continue
        cells = index[r0 : r0 + nr][ok].astype(np.int64)
        w = np.ones(cells.size) if weights is None else np.broadcast_to(weights, valid.shape)[r0 : r0 + nr][ok]
        nodes, bw = bilinear_weights(fr[r0 : r0 + nr][ok], fc[r0 : r0 + nr][ok], shape)
        di = np.clip(nodes // C - (cells // C)[:, None], -1, 1)
        dj = np.clip(nodes % C - (cells % C)[:, None], -1, 1)
        code = (di + 1) * 3 + (dj + 1)
        acc += np.bincount((cells[:, None] * 9 + code).ravel(), weights=(bw * w[:, None]).ravel(), minlength=n * 9)
        wsum += np.bincount(cells, weights=w, minlength=n)
    A9 = acc.reshape(n, 9)
    with np.errstate(invalid="ignore", divide="ignore"):
        A9 = A9 / wsum[:, None]
    A9[wsum <= 0] = 0.0
    return A9, wsum


def solve_nodes(delta: np.ndarray, A9: np.ndarray, has_pixels: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """Node values ``r`` whose interpolated cell means equal ``delta`` on cells with pixels;
    nodes without pixels take the mean of their 4-neighbours. Returns ``(r, ok)``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    R, C = shape
    n = R * C
    rows, cols, vals = [], [], []
    b = np.zeros(n)
    cr, cc = np.divmod(np.arange(n), C)
    con = has_pixels & np.isfinite(delta)
    for k, (di, dj) in enumerate(_OFFSETS):
        nr, nc = cr + di, cc + dj
        inside = (nr >= 0) & (nr < R) & (nc >= 0) & (nc < C) & con & (A9[:, k] != 0)
        rows.append(np.flatnonzero(inside))
        cols.append((nr * C + nc)[inside])
        vals.append(A9[inside, k])
    b[con] = delta[con]
    free = np.flatnonzero(~con)
    if free.size:
        deg = np.zeros(free.size)
        for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nr, nc = cr[free] + di, cc[free] + dj
            inside = (nr >= 0) & (nr < R) & (nc >= 0) & (nc < C)
            rows.append(free[inside])
            cols.append((nr * C + nc)[inside])
            vals.append(np.full(int(inside.sum()), -1.0))
            deg += inside
        rows.append(free)
        cols.append(free)
        vals.append(np.maximum(deg, 1.0))
    A = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    if not con.any():
        return np.zeros(n), True
    try:
        with np.errstate(all="ignore"):
            r = spsolve(A, b)
        ok = bool(np.isfinite(r).all()) and float(np.abs(A @ r - b).max()) < 1e-8 * max(1.0, float(np.abs(b).max()))
    except Exception:  # a singular system: fall back to the cell values
        ok = False
    if not ok:
        r = np.where(con, delta, 0.0)
    return r, ok


def correct(
    pred: np.ndarray,
    index: np.ndarray,
    weights: np.ndarray | None,
    fr: np.ndarray,
    fc: np.ndarray,
    shape: tuple[int, int],
    delta: np.ndarray,
    mode: str = "interp",
) -> tuple[np.ndarray, CorrectionInfo]:
    """``pred`` plus the residual field, with exact cell means ``mean_c(pred) + delta_c``.

    ``pred (H,W)`` model prediction (NaN missing); ``index (H,W)`` flat coarse cell of
    each pixel (-1 none); ``fr, fc (H,W)`` fractional node positions; ``delta (n_cells,)``
    (NaN = no correction). Returns a new float32 array and a :class:`CorrectionInfo`.
    """
    if mode not in ("smooth", "interp", "cell"):
        raise ValueError(f"Unknown residual mode {mode!r}; choose 'smooth', 'interp' or 'cell'")
    n = shape[0] * shape[1]
    delta = np.where(np.isfinite(delta), delta, 0.0).astype(np.float64)
    valid = np.isfinite(pred)
    mean0, wsum = cell_means(pred, index, weights, n)
    has = wsum > 0
    info = CorrectionInfo(n_cells=int(has.sum()))
    out = pred.astype(np.float32, copy=True)
    H, W = pred.shape
    if mode in ("smooth", "interp"):
        if mode == "smooth":
            A9, _ = _interp_matrix(valid, index, weights, fr, fc, shape)
            r, info.smooth_ok = solve_nodes(delta, A9, has, shape)
            if not info.smooth_ok:
                log.debug("residual correction: smooth solve failed; constant per cell")
        else:
            r = _fill_nodes(np.where(has, delta, np.nan), shape)
        for r0, nr in _blocks(H, W):
            ok = valid[r0 : r0 + nr]
            nodes, bw = bilinear_weights(fr[r0 : r0 + nr][ok], fc[r0 : r0 + nr][ok], shape)
            blk = out[r0 : r0 + nr]
            blk[ok] = (blk[ok] + (r[nodes] * bw).sum(axis=1)).astype(np.float32)
    # exact constant shift per cell
    mean1, _ = cell_means(out, index, weights, n)
    shift = np.where(has, mean0 + delta - mean1, 0.0)
    info.max_shift = float(np.abs(shift[has]).max()) if has.any() else 0.0
    _add_per_cell(out, index, shift)
    return out, info


def _fill_nodes(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """NaN nodes take the value of the nearest finite node (0 when there is none)."""
    ok = np.isfinite(values)
    if ok.all() or not ok.any():
        return np.where(ok, values, 0.0)
    from scipy.ndimage import distance_transform_edt

    _, (ir, ic) = distance_transform_edt(~ok.reshape(shape), return_indices=True)
    return values.reshape(shape)[ir, ic].ravel()


def _add_per_cell(out: np.ndarray, index: np.ndarray, per_cell: np.ndarray) -> None:
    H, W = out.shape
    for r0, nr in _blocks(H, W):
        idx = index[r0 : r0 + nr]
        blk = out[r0 : r0 + nr]
        ok = (idx >= 0) & np.isfinite(blk)
        blk[ok] = (blk[ok].astype(np.float64) + per_cell[idx[ok]]).astype(np.float32)


def clip_preserving_means(
    field: np.ndarray,
    index: np.ndarray,
    weights: np.ndarray | None,
    n_cells: int,
    lo: float,
    hi: float,
    info: CorrectionInfo | None = None,
) -> np.ndarray:
    """Clip ``field`` in place to ``[lo, hi]``; within each cell the clipped amount is given
    to the other pixels in proportion to their room to the bound, so cell means are kept
    (exactly when the cell mean lies in the range, else the mean moves to the bound)."""
    target, wsum = cell_means(field, index, weights, n_cells)
    clipped_target = np.clip(target, lo, hi)
    n_out = int((np.isfinite(target) & (clipped_target != target)).sum())
    n_clip = int((np.isfinite(field) & ((field < lo) | (field > hi))).sum())
    np.clip(field, lo, hi, out=field)
    if n_clip:
        mean, _ = cell_means(field, index, weights, n_cells)
        need = np.where(wsum > 0, (clipped_target - mean) * wsum, 0.0)  # total to add per cell
        up = np.zeros(n_cells)
        down = np.zeros(n_cells)
        H, W = field.shape
        for r0, nr in _blocks(H, W):
            idx = index[r0 : r0 + nr]
            v = field[r0 : r0 + nr]
            ok = (idx >= 0) & np.isfinite(v)
            w = 1.0 if weights is None else np.broadcast_to(weights, field.shape)[r0 : r0 + nr][ok]
            up += np.bincount(idx[ok], weights=(hi - v[ok].astype(np.float64)) * w, minlength=n_cells)
            down += np.bincount(idx[ok], weights=(v[ok].astype(np.float64) - lo) * w, minlength=n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            f_up = np.where((need > 0) & (up > 0), need / up, 0.0)
            f_down = np.where((need < 0) & (down > 0), need / down, 0.0)
        for r0, nr in _blocks(H, W):
            idx = index[r0 : r0 + nr]
            v = field[r0 : r0 + nr]
            ok = (idx >= 0) & np.isfinite(v)
            c = idx[ok]
            x = v[ok].astype(np.float64)
            x = x + f_up[c] * (hi - x) + f_down[c] * (x - lo)
            v[ok] = np.clip(x, lo, hi).astype(np.float32)
    if info is not None:
        info.clipped += n_clip
        info.targets_out_of_range += n_out
    return field
