"""Random forest downscaling: trees trained on the coarse aggregates, applied at 1 km."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..deps import describe_missing, missing_dependencies
from ..errors import SsmError
from .base import CoarseData, Downscaler, FineBlock


class ForestDownscaler(Downscaler):
    """scikit-learn ``RandomForestRegressor`` on the coarse cells (plus pooled days).

    The uncertainty combines the spread (standard deviation) of the individual trees'
    predictions with the forest's out-of-bag error at the coarse scale (the spread alone
    says how much the trees disagree, not how far they all are from the truth). Seeded (``random_state``) and with ``n_jobs`` worker threads (default 1:
    Processing runs in a background thread next to other work).

    Fitted attributes: ``forest_``, ``n_train_``, ``sigma2_`` (out-of-bag residual variance
    of the fitted day, (m3/m3)^2), ``oob_day_ (n_cells,)`` out-of-bag coarse predictions.
    """

    method = "forest"
    residual = "filter"
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
            oob_score=y.size >= 10,
        )
        import warnings

        with warnings.catch_warnings():  # few rows: some have no out-of-bag trees (handled below)
            warnings.simplefilter("ignore", UserWarning)
            self.forest_.fit(X, y)
        # out-of-bag predictions of the fitted day's cells: the coarse residuals of a forest
        # on its own training rows are near 0 (it fits them); out of bag they are honest
        n_day = int(day.train_mask.sum())
        oob = getattr(self.forest_, "oob_prediction_", None)
        fitted_in = self._trees(X[:n_day])[0]
        if oob is not None:
            o = np.asarray(oob[:n_day], dtype=np.float64)
            fitted_in = np.where(np.isfinite(o) & (o != 0), o, fitted_in)
        self.oob_day_ = np.full(day.n_cells, np.nan)
        self.oob_day_[day.train_mask] = fitted_in
        r = y[:n_day] - fitted_in
        #: model error variance (out of bag; includes the coarse retrieval error)
        self.sigma2_ = float(np.mean(r[np.isfinite(r)] ** 2)) if np.isfinite(r).any() else 0.0
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
        mean, sd = self._trees(np.asarray(block.X, dtype=np.float64))
        return mean, np.sqrt(sd * sd + self.sigma2_)

    def predict_coarse(self, day: CoarseData) -> np.ndarray:
        """The forest at every cell; on the fitted day's training cells, the out-of-bag
        prediction (so the residuals are not shrunk by the fit)."""
        self._check_fitted("forest_")
        pred = self._trees(day.X)[0]
        if getattr(self, "oob_day_", None) is not None and self.oob_day_.size == pred.size:
            ok = np.isfinite(self.oob_day_)
            pred[ok] = self.oob_day_[ok]
        return pred

    def summary(self) -> dict:
        return {"n_train": self.n_train_} if hasattr(self, "n_train_") else {}
