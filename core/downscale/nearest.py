"""The coarse input read at 1 km: every pixel takes its coarse cell's value (a baseline)."""

from __future__ import annotations

import numpy as np

from .base import FineBlock
from .bilinear import BilinearDownscaler


class NearestDownscaler(BilinearDownscaler):
    """Each 1 km pixel takes the value of the coarse cell it lies in (seams filled like
    ``bilinear``: the cell's own value interpolated in time, else the nearest observed
    cell); no predictors, no uncertainty. What a user gets by resampling the coarse
    product to 1 km with nearest neighbour.

    Fitted attributes: ``field_ (n_cells,)`` the cell values (seams filled).
    """

    method = "nearest"

    def predict(self, block: FineBlock) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted("field_")
        cell = np.asarray(block.cell)
        pred = np.where(cell >= 0, self.field_[np.maximum(cell, 0)], np.nan)
        return pred, np.full(pred.shape, np.nan)
