"""The coarse input read at 1 km: every pixel takes its coarse cell's value (a baseline)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import CoarseData, Downscaler, FineBlock
from .seams import fill_spatial


class NearestDownscaler(Downscaler):
    """Each 1 km pixel takes the value of the coarse cell it lies in (seams filled like
    ``bilinear``: the cell's own value interpolated in time, else the nearest observed
    cell); no predictors, no uncertainty. What a user gets by resampling the coarse
    product to 1 km with nearest neighbour.

    Fitted attributes: ``field_ (n_cells,)`` the cell values (seams filled).
    """

    method = "nearest"
    residual = "none"
    has_uncertainty = False
    required = ()

    def __init__(self, predictors: Sequence[str] = ()):
        self.predictors = tuple(predictors)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return ()

    def fit(self, day: CoarseData, pool: Sequence[CoarseData] = ()) -> NearestDownscaler:
        y = day.y_filled if day.y_filled is not None else day.y
        if not np.isfinite(y).any():
            raise ValueError("no coarse soil moisture to read")
        self.field_ = fill_spatial(y, day.node_xy, np.ones(y.size, dtype=bool))
        return self

    def predict(self, block: FineBlock) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted("field_")
        cell = np.asarray(block.cell)
        pred = np.where(cell >= 0, self.field_[np.maximum(cell, 0)], np.nan)
        return pred, np.full(pred.shape, np.nan)

    def predict_coarse(self, day: CoarseData) -> np.ndarray:
        self._check_fitted("field_")
        return self.field_.copy()
