"""The baseline: the coarse field (seams filled) interpolated bilinearly to 1 km."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import CoarseData, Downscaler, FineBlock
from .interp import interpolate
from .seams import fill_spatial


class BilinearDownscaler(Downscaler):
    """Bilinear interpolation between coarse cell centres; no predictors, no residual
    correction (so cell means are not preserved), no uncertainty.

    Fitted attributes: ``field_ (n_cells,)`` the node values (seams filled).
    """

    method = "bilinear"
    residual = "none"
    has_uncertainty = False
    required = ()

    def __init__(self, predictors: Sequence[str] = ()):
        self.predictors = tuple(predictors)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return ()

    def fit(self, day: CoarseData, pool: Sequence[CoarseData] = ()) -> BilinearDownscaler:
        y = day.y_filled if day.y_filled is not None else day.y
        if not np.isfinite(y).any():
            raise ValueError("no coarse soil moisture to interpolate")
        self.field_ = fill_spatial(y, day.node_xy, np.ones(y.size, dtype=bool))
        self.shape_ = tuple(day.shape)
        return self

    def predict(self, block: FineBlock) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted("field_")
        pred = interpolate(self.field_, block.fr, block.fc, self.shape_)
        return pred, np.full(pred.shape, np.nan)

    def predict_coarse(self, day: CoarseData) -> np.ndarray:
        self._check_fitted("field_")
        return self.field_.copy()
