"""The downscaler interface shared by every method, in the scikit-learn style.

``__init__`` only stores parameters; ``fit(day, pool=())`` learns from coarse-scale data
(one day's :class:`CoarseData`, optionally neighbouring days to pool) and returns self;
``predict(block)`` evaluates the model at 1 km pixels (a :class:`FineBlock`) and returns
``(ssm, uncertainty)``. Fitted attributes end in ``_``.

Before aggregation, ``features(raw)`` turns the raw 1 km predictors of a block (a dict of
arrays: ``lst``, ``ndvi``, ``albedo``, optional ``dem``, ``lst_diff``) into the method's
feature matrix; ``prepare(sample)`` may first learn day-level constants from a sample of
the day's 1 km predictors (DisPATCh's LST-NDVI trapezoid). The driver aggregates the
features to the coarse grid, fits, predicts at 1 km and applies the residual correction
(``residual``: ``"interp"``, ``"smooth"``, ``"cell"`` or ``"none"``).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: every raw predictor name the driver knows, in feature order
PREDICTOR_ORDER = ("lst", "ndvi", "albedo", "dem", "lst_diff")


@dataclass
class CoarseData:
    """One day at the coarse scale, over every cell of the (cropped) coarse grid.

    ``y (n,)`` coarse SSM (m3/m3, NaN missing); ``X (n,k)`` features aggregated over the
    valid 1 km pixels of each cell (NaN where none); ``usable (n,)`` cells with enough
    valid pixels to learn from; ``node_xy (n,2)`` cell centres in the fine CRS (m);
    ``shape`` the coarse grid ``(rows, cols)`` with ``n = rows * cols``; ``y_filled`` the
    coarse field with its seams filled (temporal, then spatial) for the methods that need
    a value in every cell; ``day`` an ordinal (pooling offset).
    """

    y: np.ndarray
    X: np.ndarray
    usable: np.ndarray
    node_xy: np.ndarray
    shape: tuple[int, int]
    feature_names: tuple[str, ...]
    y_filled: np.ndarray | None = None
    day: int = 0

    def __post_init__(self) -> None:
        n = int(self.shape[0]) * int(self.shape[1])
        self.y = np.asarray(self.y, dtype=np.float64).ravel()
        self.X = np.asarray(self.X, dtype=np.float64).reshape(n, -1)
        self.usable = np.asarray(self.usable, dtype=bool).ravel()
        self.node_xy = np.asarray(self.node_xy, dtype=np.float64).reshape(n, 2)
        if self.y.size != n or self.usable.size != n:
            raise ValueError(f"coarse arrays do not match the grid shape {self.shape}")
        if self.X.shape[1] != len(self.feature_names):
            raise ValueError(f"{self.X.shape[1]} feature columns for names {self.feature_names}")
        if self.y_filled is not None:
            self.y_filled = np.asarray(self.y_filled, dtype=np.float64).ravel()

    @property
    def n_cells(self) -> int:
        return self.y.size

    @property
    def train_mask(self) -> np.ndarray:
        """Cells to learn from: observed, usable, every feature finite."""
        return np.isfinite(self.y) & self.usable & np.isfinite(self.X).all(axis=1)


@dataclass
class FineBlock:
    """1 km pixels to predict at: ``X (m,k)`` features, ``fr, fc (m,)`` fractional node
    coordinates in the coarse grid (node ``(i, j)`` = centre of cell ``(i, j)``), ``cell (m,)``
    flat coarse index of each pixel (-1 outside the coarse grid). ``uncertainty=False``:
    the caller uses only the prediction (a method may return NaN for its uncertainty and
    skip that work; the prediction is the same to the bit)."""

    X: np.ndarray
    fr: np.ndarray
    fc: np.ndarray
    cell: np.ndarray
    uncertainty: bool = True

    @property
    def size(self) -> int:
        return self.fr.size


class Downscaler:
    """Base class: parameters in ``__init__``, ``fit`` returns self, ``predict`` at 1 km."""

    #: method name used by :func:`make_downscaler`
    method = ""
    #: residual correction the driver applies after ``predict``
    residual = "filter"
    #: whether ``predict`` returns a meaningful uncertainty
    has_uncertainty = False
    #: raw predictors the method needs (checked by the driver)
    required = ("lst", "ndvi", "albedo")
    #: whether the driver scales the 1 km within-cell anomalies by the estimated anomaly gain
    scale_gain = False
    #: whether ``predict`` takes rows with missing predictors (NaN in ``X`` or the
    #: positions) and returns NaN for them, so the driver passes whole blocks
    predicts_missing = False

    def __init__(self, predictors: Sequence[str] = ("lst", "ndvi", "albedo")):
        self.predictors = tuple(predictors)

    # parameters ------------------------------------------------------------------------
    def get_params(self) -> dict:
        """Constructor parameters and their current values."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params) -> Downscaler:
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {k!r}")
            setattr(self, k, v)
        return self

    def clone(self) -> Downscaler:
        """An unfitted copy with the same parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # features --------------------------------------------------------------------------
    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(p for p in PREDICTOR_ORDER if p in self.predictors)

    def prepare(self, sample: Mapping[str, np.ndarray]) -> None:
        """Learn day-level constants from 1 km predictor samples (default: nothing)."""

    def features(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """Feature matrix ``(m, k)`` float64 from raw predictor arrays of equal shape,
        column-major (each predictor's column is contiguous: filled by one converting copy
        per predictor, where interleaving rows would cost a second pass over ``m x k``)."""
        names = self.feature_names
        for name in names:
            if name not in raw:
                raise KeyError(f"predictor {name!r} is missing")
        m = np.asarray(next(iter(raw.values()))).size
        cols = np.empty((len(names), m))
        for a, name in enumerate(names):
            cols[a] = np.asarray(raw[name]).reshape(-1)
        return cols.T

    # model ------------------------------------------------------------------------------
    def fit(self, day: CoarseData, pool: Sequence[CoarseData] = ()) -> Downscaler:
        raise NotImplementedError

    def predict(self, block: FineBlock) -> tuple[np.ndarray, np.ndarray]:
        """``(ssm, uncertainty)`` float64 ``(m,)``; NaN where a feature is missing."""
        raise NotImplementedError

    def predict_coarse(self, day: CoarseData) -> np.ndarray:
        """The model at every coarse cell from its aggregated features ``(n,)``."""
        raise NotImplementedError

    def summary(self) -> dict:
        """A few fitted numbers for logs and the coverage table."""
        return {}

    def _check_fitted(self, attr: str) -> None:
        if not hasattr(self, attr):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() first")


def stack_training(day: CoarseData, pool: Sequence[CoarseData]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training rows of ``day`` and the pooled days: ``X (n,k)``, ``y (n,)``, ``xy (n,2)``."""
    Xs, ys, xys = [], [], []
    for d in (day, *pool):
        if d.feature_names != day.feature_names or d.shape != day.shape:
            raise ValueError("pooled days must share the grid and features of the fitted day")
        m = d.train_mask
        Xs.append(d.X[m])
        ys.append(d.y[m])
        xys.append(d.node_xy[m])
    return np.concatenate(Xs), np.concatenate(ys), np.concatenate(xys)
