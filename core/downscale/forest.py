"""Random forest downscaling: trees trained on the coarse aggregates, applied at 1 km."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..deps import describe_missing, missing_dependencies
from ..errors import SsmError
from .base import CoarseData, Downscaler, FineBlock


class ForestDownscaler(Downscaler):
    """scikit-learn ``RandomForestRegressor`` on the coarse cells (plus pooled days).

    The uncertainty is the spread (standard deviation) of the individual trees'
    predictions. Seeded (``random_state``) and with ``n_jobs`` worker threads (default 1:
    Processing runs in a background thread next to other work).

    Fitted attributes: ``forest_``, ``n_train_``, ``oob_score_`` (when ``oob_score``).
    """

    method = "forest"
    residual = "interp"
    has_uncertainty = True
    scale_gain = True

    def __init__(
        self,
        predictors: Sequence[str] = ("lst", "ndvi", "albedo", "dem"),
        n_estimators: int = 100,
        min_samples_leaf: int = 3,
        max_features: float = 1.0,
        random_state: int = 0,
        n_jobs: int = 1,
    ):
        self.predictors = tuple(predictors)
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, day: CoarseData, pool: Sequence[CoarseData] = ()) -> ForestDownscaler:
        try:
            from sklearn.ensemble import RandomForestRegressor
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise SsmError(
                "The forest method needs scikit-learn. " + describe_missing([d for d in missing_dependencies() if d.module == "sklearn"])
            ) from exc
        Xs, ys = [], []
        for d in (day, *pool):
            m = d.train_mask
            Xs.append(d.X[m])
            ys.append(d.y[m])
        X, y = np.concatenate(Xs), np.concatenate(ys)
        if y.size == 0:
            raise ValueError("no coarse cell with both soil moisture and predictors to fit on")
        self.forest_ = RandomForestRegressor(
            n_estimators=int(self.n_estimators),
            min_samples_leaf=int(self.min_samples_leaf),
            max_features=self.max_features,
            random_state=int(self.random_state),
            n_jobs=int(self.n_jobs),
        ).fit(X, y)
        self.n_train_ = int(y.size)
        return self

    def _trees(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = np.isfinite(X).all(axis=1)
        mean = np.full(X.shape[0], np.nan)
        sd = np.full(X.shape[0], np.nan)
        if ok.any():
            Xo = np.ascontiguousarray(X[ok], dtype=np.float32)
            s = np.zeros(Xo.shape[0])
            s2 = np.zeros(Xo.shape[0])
            for tree in self.forest_.estimators_:
                p = tree.predict(Xo)
                s += p
                s2 += p * p
            t = len(self.forest_.estimators_)
            mean[ok] = s / t
            sd[ok] = np.sqrt(np.maximum(s2 / t - (s / t) ** 2, 0.0))
        return mean, sd

    def predict(self, block: FineBlock) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted("forest_")
        return self._trees(np.asarray(block.X, dtype=np.float64))

    def predict_coarse(self, day: CoarseData) -> np.ndarray:
        self._check_fitted("forest_")
        return self._trees(day.X)[0]

    def summary(self) -> dict:
        return {"n_train": self.n_train_} if hasattr(self, "n_train_") else {}
