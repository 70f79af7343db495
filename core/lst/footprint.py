"""The background's footprint: averaging a 1 km field over the coarse background cells
and interpolating it back to 1 km, the way the background itself reaches 1 km.

The gap filler needs ``S[z]`` (the elevation the background "sees", for the lapse-rate
correction), ``S[cloud]`` (the cloud fraction inside the background footprint, for the
cloudy-sky correction) and ``S[ndvi]``. Two implementations share the ``smooth`` method:

- :class:`GridFootprint` for real grids (any CRS): area-weighted mean over each
  background cell (:class:`~ssm_downscaling.core.membership.Membership`), then bilinear
  interpolation back onto the 1 km grid (:class:`BilinearMap`, the pixel positions in the
  background grid computed once), exactly as the background files themselves are read;
- :class:`BlockFootprint` for plain arrays: mean over ``k x k`` blocks, bilinear back.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from osgeo import gdal
from scipy import ndimage

from ..grid import Grid, transform_points, warp_to_grid
from ..membership import Membership
from .kernels import bilinear_gather, cell_sums
from .smoothing import BlockGrid

#: above this many pixels, positions are computed on a sparser lattice and interpolated
EXACT_POSITIONS_MAX = 1_000_000
LATTICE_STEP = 8


class BilinearMap:
    """Bilinear interpolation from a coarse grid to a fine grid (any two CRSs).

    The fractional position of every fine pixel centre in the coarse grid is computed
    once (exactly, or on a lattice every ``LATTICE_STEP`` pixels for large grids: the
    transform is smooth at that scale); each call is then a NaN-aware weighted sum of the
    four surrounding coarse centres (constant beyond the outermost centres).
    """

    def __init__(self, fine: Grid, coarse: Grid):
        self.fine = fine
        self.coarse = coarse
        step = 1 if fine.size <= EXACT_POSITIONS_MAX else LATTICE_STEP
        rows = np.unique(np.r_[np.arange(0, fine.height, step), fine.height - 1])
        cols = np.unique(np.r_[np.arange(0, fine.width, step), fine.width - 1])
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        x, y = fine.xy(rr, cc)
        x, y = transform_points(x, y, fine.crs_wkt, coarse.crs_wkt)
        inv = gdal.InvGeoTransform(coarse.transform)
        u = inv[0] + x * inv[1] + y * inv[2] - 0.5  # column position between cell centres
        v = inv[3] + x * inv[4] + y * inv[5] - 0.5
        if step > 1:
            u, v = _lattice_to_full(u, rows, cols, fine.shape), _lattice_to_full(v, rows, cols, fine.shape)
        h, w = coarse.shape
        inside = np.isfinite(u) & np.isfinite(v)
        u = np.clip(np.where(inside, u, 0.0), 0.0, w - 1.0)
        v = np.clip(np.where(inside, v, 0.0), 0.0, h - 1.0)
        j0 = np.floor(u).astype(np.int64)
        i0 = np.floor(v).astype(np.int64)
        #: flat index of the upper-left neighbour in the edge-padded (h+1, w+1) array; -1 outside
        #: (int32 when it fits: half the memory and reads of int64 on a China-sized grid)
        itype = np.int32 if (h + 1) * (w + 1) < 2**31 - 1 else np.int64
        self.base = np.where(inside, i0 * (w + 1) + j0, -1).astype(itype)
        self.fu = (u - j0).astype(np.float32)
        self.fv = (v - i0).astype(np.float32)

    def __call__(self, coarse_values: np.ndarray) -> np.ndarray:
        a = np.asarray(coarse_values, dtype=np.float64)
        if a.shape != self.coarse.shape:
            raise ValueError(f"coarse values have shape {a.shape}, the grid is {self.coarse.shape}")
        padded = np.pad(a, ((0, 1), (0, 1)), mode="edge")
        return bilinear_gather(padded, self.base, self.fu, self.fv)


def _lattice_to_full(a: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Separable linear interpolation of lattice values ``a`` (len(rows), len(cols)) to ``shape``."""
    r = np.arange(shape[0])
    c = np.arange(shape[1])
    ri = np.clip(np.searchsorted(rows, r, side="right") - 1, 0, len(rows) - 2) if len(rows) > 1 else np.zeros_like(r)
    ci = np.clip(np.searchsorted(cols, c, side="right") - 1, 0, len(cols) - 2) if len(cols) > 1 else np.zeros_like(c)
    if len(rows) > 1:
        fr = (r - rows[ri]) / (rows[ri + 1] - rows[ri])
        tmp = a[ri] * (1 - fr)[:, None] + a[ri + 1] * fr[:, None]
    else:
        tmp = a[ri]
    if len(cols) > 1:
        fc = (c - cols[ci]) / (cols[ci + 1] - cols[ci])
        return tmp[:, ci] * (1 - fc)[None, :] + tmp[:, ci + 1] * fc[None, :]
    return tmp[:, ci]


class Footprint(Protocol):
    sigma_cells: float

    def smooth(self, values: np.ndarray) -> np.ndarray:
        """NaN-aware mean of ``values`` (H, W) over each background cell, back at 1 km (float32)."""

    def with_sigma(self, sigma_cells: float) -> Footprint:
        """The same cells with another effective-resolution blur."""

    def cell_means(self, values: np.ndarray) -> np.ndarray:
        """The first half of :meth:`smooth`: the blurred cell means (small, on the background cells)."""

    def to_fine(self, coarse: np.ndarray) -> np.ndarray:
        """The second half of :meth:`smooth`: cell values to 1 km (float32)."""


def blur_cells(coarse: np.ndarray, sigma_cells: float) -> np.ndarray:
    """NaN-aware Gaussian smoothing (sigma in cells) of a coarse field: the effective
    resolution of a product is usually coarser than its grid (reanalyses: 2-3 cells)."""
    if sigma_cells <= 0:
        return coarse
    ok = np.isfinite(coarse)
    num = ndimage.gaussian_filter(np.where(ok, coarse, 0.0).astype(np.float64), sigma_cells, mode="nearest")
    den = ndimage.gaussian_filter(ok.astype(np.float64), sigma_cells, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok & (den > 1e-6), num / den, np.nan)


class BlockFootprint:
    """Background cells of ``factor x factor`` pixels (for arrays without a grid, e.g. tests).

    A background built as ``to_fine(block_means(T))`` is exactly ``smooth(T)``;
    ``sigma_cells`` adds a Gaussian blur on the cell grid (the effective resolution).
    """

    def __init__(self, shape: tuple[int, int], factor: int, sigma_cells: float = 0.0):
        self.blocks = BlockGrid((int(shape[0]), int(shape[1])), int(factor))
        self.sigma_cells = float(sigma_cells)

    def with_sigma(self, sigma_cells: float) -> BlockFootprint:
        return BlockFootprint(self.blocks.shape, self.blocks.factor, sigma_cells)

    def block_means(self, values: np.ndarray) -> np.ndarray:
        ok = np.isfinite(values)
        s = self.blocks.sum(np.where(ok, values, 0.0))
        n = self.blocks.sum(ok)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, s / n, np.nan)

    def to_fine(self, blocks: np.ndarray) -> np.ndarray:
        return self.blocks.upsample(blocks)

    def cell_means(self, values: np.ndarray) -> np.ndarray:
        return blur_cells(self.block_means(values), self.sigma_cells)

    def smooth(self, values: np.ndarray) -> np.ndarray:
        return self.to_fine(self.cell_means(values))


class GridFootprint:
    """Background cells of a real coarse grid (any CRS) over a 1 km grid, optionally
    blurred by a Gaussian of ``sigma_cells`` cells (the product's effective resolution)."""

    def __init__(self, fine: Grid, background: Grid, sigma_cells: float = 0.0, _shared: tuple | None = None):
        self.fine = fine
        self.background = background
        self.sigma_cells = float(sigma_cells)
        if _shared is None:
            coarse = background.covering(fine, margin=2)
            _shared = (coarse, Membership.build(fine, coarse), BilinearMap(fine, coarse))
        self._shared = _shared
        self.coarse, self.membership, self.bilinear = _shared
        self._row_w: np.ndarray | None = None

    def with_sigma(self, sigma_cells: float) -> GridFootprint:
        """The same footprint with another blur (membership and positions are reused)."""
        return GridFootprint(self.fine, self.background, sigma_cells, self._shared)

    def block_means(self, values: np.ndarray) -> np.ndarray:
        """Area-weighted NaN-aware mean of ``values`` (H, W) per background cell, float32
        ``coarse.shape`` (NaN without valid member), as :meth:`Membership.aggregate`."""
        m = self.membership
        if values.shape != self.fine.shape:
            raise ValueError(f"values have shape {values.shape}, the fine grid is {self.fine.shape}")
        if self._row_w is None:
            w = np.ones((1, 1)) if m.weights is None else np.asarray(m.weights, dtype=np.float64)
            if w.ndim == 2 and w.shape[1] > 1 and not (w == w[:, :1]).all():
                return m.aggregate(values, return_count=False)  # weights vary along rows: general path
            self._row_w = np.ascontiguousarray(np.broadcast_to(w[:, :1], (self.fine.height, 1))[:, 0])
        s = cell_sums(np.ascontiguousarray(values), np.ascontiguousarray(m.index), self._row_w, m.n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s[1] / s[0]
        mean[s[2] < 1] = np.nan
        return mean.astype(np.float32).reshape(m.coarse.shape)

    def to_fine(self, coarse: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of a field on the (cropped) background grid to 1 km."""
        return self.bilinear(coarse)

    def read(self, path) -> np.ndarray:
        """A background raster at 1 km: its cells over the area, interpolated bilinearly
        (files on another grid than the first one are warped by GDAL instead)."""
        g = Grid.from_raster(path)
        if g.window_of(self.coarse) is None:
            return warp_to_grid(path, self.fine, resampling="bilinear")
        return self.to_fine(warp_to_grid(path, self.coarse, resampling="nearest"))

    def cell_means(self, values: np.ndarray) -> np.ndarray:
        return blur_cells(self.block_means(values), self.sigma_cells)

    def smooth(self, values: np.ndarray) -> np.ndarray:
        return self.to_fine(self.cell_means(values))
