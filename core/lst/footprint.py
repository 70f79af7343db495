"""The background's footprint: averaging a 1 km field over the coarse background cells
and interpolating it back to 1 km, the way the background itself reaches 1 km.

The gap filler needs ``S[z]`` (the elevation the background "sees", for the lapse-rate
correction), ``S[cloud]`` (the cloud fraction inside the background footprint, for the
cloudy-sky correction) and ``S[ndvi]``. Two implementations share the ``smooth`` method:

- :class:`GridFootprint` for real grids (any CRS): area-weighted mean over each
  background cell (:class:`~ssm_downscaling.core.membership.Membership`), then GDAL
  bilinear warping back onto the 1 km grid, exactly as the background files are read;
- :class:`BlockFootprint` for plain arrays: mean over ``k x k`` blocks, bilinear back.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..grid import Grid, array_to_mem, warp_to_grid
from ..membership import Membership
from .smoothing import BlockGrid


class Footprint(Protocol):
    def smooth(self, values: np.ndarray) -> np.ndarray:
        """NaN-aware mean of ``values`` (H, W) over each background cell, back at 1 km (float32)."""


class BlockFootprint:
    """Background cells of ``factor x factor`` pixels (for arrays without a grid, e.g. tests).

    A background built as ``to_fine(block_means(T))`` is exactly ``smooth(T)``.
    """

    def __init__(self, shape: tuple[int, int], factor: int):
        self.blocks = BlockGrid((int(shape[0]), int(shape[1])), int(factor))

    def block_means(self, values: np.ndarray) -> np.ndarray:
        ok = np.isfinite(values)
        s = self.blocks.sum(np.where(ok, values, 0.0))
        n = self.blocks.sum(ok)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, s / n, np.nan)

    def to_fine(self, blocks: np.ndarray) -> np.ndarray:
        return self.blocks.upsample(blocks)

    def smooth(self, values: np.ndarray) -> np.ndarray:
        return self.to_fine(self.block_means(values))


class GridFootprint:
    """Background cells of a real coarse grid (any CRS) over a 1 km grid."""

    def __init__(self, fine: Grid, background: Grid):
        self.fine = fine
        self.coarse = background.covering(fine, margin=2)
        self.membership = Membership.build(fine, self.coarse)

    def block_means(self, values: np.ndarray) -> np.ndarray:
        return self.membership.aggregate(values, return_count=False)

    def to_fine(self, coarse: np.ndarray) -> np.ndarray:
        ds = array_to_mem(np.asarray(coarse, dtype=np.float32), self.coarse)
        return warp_to_grid(ds, self.fine, resampling="bilinear")

    def smooth(self, values: np.ndarray) -> np.ndarray:
        return self.to_fine(self.block_means(values))
