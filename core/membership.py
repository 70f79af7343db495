"""Fine-to-coarse membership and aggregation between grids in any two CRSs.

Each fine pixel belongs to the coarse cell that contains its centre (transformed into
the coarse CRS). The mapping is computed once by GDAL (an index raster of the coarse
grid warped with nearest-neighbour and an exact transformer onto the fine grid) and then
reused for aggregation (fine -> coarse) and expansion (coarse -> fine).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from osgeo import gdal

from .errors import GridError
from .grid import Grid, read_threads, same_crs, to_wkt, transform_points
from .gridcache import cached_arrays

gdal.UseExceptions()


def _index_raster_on(fine: Grid, coarse: Grid) -> np.ndarray:
    """Flat coarse-cell index (row * coarse.width + col) of each fine pixel; -1 outside."""
    idx = np.arange(coarse.size, dtype=np.int32).reshape(coarse.shape)
    src = coarse.create_mem(gdal.GDT_Int32)
    src.GetRasterBand(1).WriteArray(idx)
    src.GetRasterBand(1).SetNoDataValue(-1)
    dst = fine.create_mem(gdal.GDT_Int32)
    band = dst.GetRasterBand(1)
    band.SetNoDataValue(-1)
    band.Fill(-1)
    threads = read_threads()  # the warper's threads give the same pixels as one (tested): 4.5 -> 2.4 s at China size
    mt = {"multithread": True, "warpOptions": [f"NUM_THREADS={threads}"]} if threads != "1" else {}
    try:
        gdal.Warp(
            dst,
            src,
            options=gdal.WarpOptions(resampleAlg="near", srcNodata=-1, dstNodata=-1, errorThreshold=0.0, **mt),
        )
    except RuntimeError as exc:
        raise GridError(f"Cannot map the fine grid onto the coarse grid: {exc}") from exc
    out = band.ReadAsArray().astype(np.int32)
    src = dst = None
    return out


@dataclass
class Membership:
    """Which coarse cell each fine pixel belongs to.

    Attributes
    ----------
    fine, coarse : Grid
        ``coarse`` is usually cropped to the fine footprint (:meth:`Grid.covering`).
    index : int32 array, shape ``fine.shape``
        Flat index into ``coarse`` (``row * coarse.width + col``), -1 outside the coarse grid.
    weights : float array broadcastable to ``fine.shape`` or None
        Pixel areas (m2) when the fine grid is not equal-area; None means equal weights.
    areas : float array broadcastable to ``fine.shape`` or None
        The fine pixel areas (m2) as :meth:`Grid.pixel_areas` gives them (None: computed
        when needed).
    """

    fine: Grid
    coarse: Grid
    index: np.ndarray
    weights: np.ndarray | None = None
    areas: np.ndarray | None = None
    _members: np.ndarray | None = field(default=None, repr=False)
    _covered: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def build(cls, fine: Grid, coarse: Grid, cache: bool = True) -> Membership:
        """Compute the membership of ``fine`` pixels in ``coarse`` cells (the index, the
        pixel areas, the members and covered area per cell come from the grid cache,
        :mod:`..gridcache`, unless ``cache`` is False)."""

        def make() -> dict[str, np.ndarray]:
            m = cls(fine, coarse, _index_raster_on(fine, coarse), None, fine.pixel_areas())
            return {"index": m.index, "areas": m.areas, "members": m.members, "covered": m._covered_area()}

        got = cached_arrays("membership", (fine, coarse), make) if cache else make()
        index, areas = got["index"], got["areas"]
        weights = None if areas.size == 1 else np.broadcast_to(areas.astype(np.float64), fine.shape)
        m = cls(fine, coarse, index, weights, areas, got["members"], got["covered"])
        if not (index >= 0).any():
            raise GridError(f"The grids do not overlap: no pixel of {fine!r} falls in {coarse!r}")
        return m

    # ------------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        return self.coarse.size

    @property
    def members(self) -> np.ndarray:
        """Number of fine pixels in each coarse cell, int64 array ``coarse.shape``."""
        if self._members is None:
            valid = self.index >= 0
            self._members = np.bincount(self.index[valid], minlength=self.n_cells).reshape(self.coarse.shape)
        return self._members

    def aggregate(
        self, values: np.ndarray, min_count: int = 1, return_count: bool = True
    ) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
        """Area-weighted NaN-aware mean of fine ``values`` per coarse cell.

        Returns ``(mean, count)``: float32 ``coarse.shape`` (NaN where fewer than
        ``min_count`` valid members) and int64 ``coarse.shape`` valid-member counts.
        """
        if values.shape != self.fine.shape:
            raise ValueError(f"values have shape {values.shape}, the fine grid is {self.fine.shape}")
        agg = Aggregator(self)
        agg.add(values, 0)
        return agg.result(min_count=min_count, return_count=return_count)

    def expand(self, coarse_values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """The value of each fine pixel's coarse cell, shape ``fine.shape``."""
        if coarse_values.shape != self.coarse.shape:
            raise ValueError(f"coarse values have shape {coarse_values.shape}, the coarse grid is {self.coarse.shape}")
        flat = np.asarray(coarse_values).ravel()
        out = np.full(self.fine.shape, fill, dtype=np.result_type(flat.dtype, np.float32))
        ok = self.index >= 0
        out[ok] = flat[self.index[ok]]
        return out

    def coverage(self) -> np.ndarray:
        """Fraction of each coarse cell's area covered by member fine pixels (0..1+)."""
        if self._covered is None:
            self._covered = self._covered_area()
        cell_area = np.broadcast_to(self.coarse.pixel_areas(), self.coarse.shape)
        return self._covered / cell_area

    def _covered_area(self) -> np.ndarray:
        """Area (m2) of the member fine pixels of each coarse cell, ``coarse.shape``."""
        fine_area = self.areas if self.areas is not None else self.fine.pixel_areas()
        if fine_area.size == 1:
            return self.members * float(fine_area.ravel()[0])
        w = np.broadcast_to(fine_area, self.fine.shape)
        ok = self.index >= 0
        return np.bincount(self.index[ok], weights=w[ok], minlength=self.n_cells).reshape(self.coarse.shape)

    def cell_centres_in_fine_crs(self) -> tuple[np.ndarray, np.ndarray]:
        """Coarse cell centres as fine-CRS coordinates, each ``coarse.shape``."""
        x, y = self.coarse.centres()
        return transform_points(x, y, self.coarse.crs_wkt, self.fine.crs_wkt)


class Aggregator:
    """Accumulates area-weighted sums of fine values per coarse cell, block by block."""

    def __init__(self, membership: Membership):
        self.m = membership
        self.wsum = np.zeros(membership.n_cells, dtype=np.float64)
        self.vsum = np.zeros(membership.n_cells, dtype=np.float64)
        self.count = np.zeros(membership.n_cells, dtype=np.int64)

    def add(self, block: np.ndarray, row0: int) -> None:
        """Add fine values for rows ``row0 : row0 + block.shape[0]`` (NaN ignored)."""
        nr = block.shape[0]
        idx = self.m.index[row0 : row0 + nr]
        ok = (idx >= 0) & np.isfinite(block)
        cells = idx[ok]
        vals = block[ok].astype(np.float64)
        if self.m.weights is None:
            w = None
            self.wsum += np.bincount(cells, minlength=self.m.n_cells)
        else:
            w = self.m.weights[row0 : row0 + nr][ok]
            self.wsum += np.bincount(cells, weights=w, minlength=self.m.n_cells)
        self.vsum += np.bincount(cells, weights=vals if w is None else vals * w, minlength=self.m.n_cells)
        self.count += np.bincount(cells, minlength=self.m.n_cells)

    def result(self, min_count: int = 1, return_count: bool = True) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.vsum / self.wsum
        mean[self.count < max(min_count, 1)] = np.nan
        mean = mean.astype(np.float32).reshape(self.m.coarse.shape)
        if return_count:
            return mean, self.count.reshape(self.m.coarse.shape)
        return mean


def coarse_window_for(fine: Grid, coarse: Grid, margin: int = 0) -> Grid:
    """The window of ``coarse`` that covers the fine grid (cells any fine pixel can fall in)."""
    return coarse.covering(fine, margin=margin)


def membership_by_points(fine: Grid, coarse: Grid) -> np.ndarray:
    """Reference implementation of :meth:`Membership.build`'s index by explicit point
    transformation of every fine pixel centre (slow; used in tests and for checks)."""
    x, y = fine.centres()
    if not same_crs(fine.crs_wkt, coarse.crs_wkt):
        x, y = transform_points(x, y, fine.crs_wkt, to_wkt(coarse.crs_wkt))
    r, c = coarse.rowcol(x, y)
    return np.where(r >= 0, r * coarse.width + c, -1).astype(np.int32)
