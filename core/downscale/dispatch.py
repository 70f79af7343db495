"""DisPATCh: disaggregation by soil evaporative efficiency (Merlin et al. 2008, 2012).

Per day, the LST-fv trapezoid gives the soil temperature and its extremes:
``fv = (NDVI - NDVI_soil) / (NDVI_veg - NDVI_soil)`` (clipped to 0..1),
``Ts = (LST - fv Tv) / (1 - fv)`` and ``SEE = (Ts_max - Ts) / (Ts_max - Ts_min)``. The
trapezoid's vertices come from the dry (warm) and wet (cold) edges: lines fitted to high
and low LST quantiles of fv bins, evaluated at fv = 0 (``Ts_max``, ``Ts_min``) and fv = 1
(``Tv_max``, ``Tv_min``; ``Tv`` is their mean). With a DEM, LST is first brought to the
scene's mean elevation with a fixed lapse rate.

``SM_1km = SM_c + (dSM/dSEE)_c (SEE_1km - <SEE>_c)`` with the SEE model
``SEE = 1/2 - 1/2 cos(pi SM / SMp)``, ``SMp`` from the coarse pair ``(SM_c, <SEE>_c)``, so
``(dSM/dSEE)_c = 2 SM_c / (theta sin theta)`` with ``theta = arccos(1 - 2 <SEE>_c)``.
Cell means are preserved by construction (a constant residual per cell cleans rounding).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from .base import CoarseData, Downscaler, FineBlock

log = logging.getLogger(__name__)


class DispatchDownscaler(Downscaler):
    """DisPATCh with a daily LST-fv trapezoid.

    Parameters: ``ndvi_soil``, ``ndvi_veg`` (fv end members), ``fv_max`` (fv used in the
    Ts equation is capped there), ``edge_quantile`` (LST quantile of the wet/dry edges per
    fv bin), ``lapse_rate`` (K/m, applied to LST when a DEM is given), ``see_clip``
    (``<SEE>_c`` kept inside ``[see_clip, 1 - see_clip]`` for the derivative).

    Fitted attributes: ``vertices_`` (Ts_min, Ts_max, Tv_min, Tv_max in K, set by
    :meth:`prepare`), ``slope_ (n_cells,)`` dSM/dSEE, ``sm_ (n_cells,)``, ``see_ (n_cells,)``.
    """

    method = "dispatch"
    residual = "cell"
    has_uncertainty = False
    required = ("lst", "ndvi")

    def __init__(
        self,
        predictors: Sequence[str] = ("lst", "ndvi", "dem"),
        ndvi_soil: float = 0.15,
        ndvi_veg: float = 0.90,
        fv_max: float = 0.9,
        edge_quantile: float = 0.02,
        lapse_rate: float = 0.0065,
        see_clip: float = 0.05,
    ):
        self.predictors = tuple(predictors)
        self.ndvi_soil = ndvi_soil
        self.ndvi_veg = ndvi_veg
        self.fv_max = fv_max
        self.edge_quantile = edge_quantile
        self.lapse_rate = lapse_rate
        self.see_clip = see_clip

    @property
    def feature_names(self) -> tuple[str, ...]:
        return ("see",)

    # trapezoid --------------------------------------------------------------------------
    def _fv(self, ndvi: np.ndarray) -> np.ndarray:
        return np.clip((ndvi - self.ndvi_soil) / (self.ndvi_veg - self.ndvi_soil), 0.0, 1.0)

    def _lst(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        lst = np.asarray(raw["lst"], dtype=np.float64).ravel()
        if "dem" in raw and "dem" in self.predictors and self.lapse_rate:
            dem = np.asarray(raw["dem"], dtype=np.float64).ravel()
            ref = getattr(self, "dem_ref_", None)
            if ref is None:
                ref = float(np.nanmean(dem)) if np.isfinite(dem).any() else 0.0
            lst = lst + self.lapse_rate * (dem - ref)
        return lst

    def prepare(self, sample: Mapping[str, np.ndarray]) -> None:
        """Fit the day's trapezoid vertices from a sample of 1 km LST, NDVI (and DEM)."""
        if "dem" in sample and "dem" in self.predictors:
            dem = np.asarray(sample["dem"], dtype=np.float64)
            self.dem_ref_ = float(np.nanmean(dem)) if np.isfinite(dem).any() else 0.0
        lst = self._lst(sample)
        fv = self._fv(np.asarray(sample["ndvi"], dtype=np.float64).ravel())
        ok = np.isfinite(lst) & np.isfinite(fv)
        lst, fv = lst[ok], fv[ok]
        if lst.size < 10:
            raise ValueError("too few pixels with both LST and NDVI to build the LST-NDVI trapezoid")
        q = self.edge_quantile
        edges = np.linspace(0.0, 1.0, 11)
        centres, hi, lo = [], [], []
        for a, b in zip(edges[:-1], edges[1:]):
            sel = (fv >= a) & ((fv < b) if b < 1 else (fv <= b))
            if sel.sum() >= 20:
                centres.append(fv[sel].mean())
                hi.append(np.quantile(lst[sel], 1 - q))
                lo.append(np.quantile(lst[sel], q))
        if len(centres) >= 2 and np.ptp(centres) > 0.2:
            dry = np.polyfit(centres, hi, 1)
            wet = np.polyfit(centres, lo, 1)
            ts_max, tv_max = np.polyval(dry, 0.0), np.polyval(dry, 1.0)
            ts_min, tv_min = np.polyval(wet, 0.0), np.polyval(wet, 1.0)
        else:  # no fv range: a triangle collapsed to the LST range of the day
            ts_max, ts_min = np.quantile(lst, 1 - q), np.quantile(lst, q)
            tv_max = tv_min = 0.5 * (ts_max + ts_min)
        if not ts_max - ts_min > 1.0:
            mid = 0.5 * (ts_max + ts_min)
            ts_max, ts_min = mid + 0.5, mid - 0.5
        self.vertices_ = (float(ts_min), float(ts_max), float(tv_min), float(tv_max))

    def features(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        self._check_fitted("vertices_")
        ts_min, ts_max, tv_min, tv_max = self.vertices_
        tv = 0.5 * (tv_min + tv_max)
        lst = self._lst(raw)
        fv = np.minimum(self._fv(np.asarray(raw["ndvi"], dtype=np.float64).ravel()), self.fv_max)
        ts = (lst - fv * tv) / (1.0 - fv)
        see = np.clip((ts_max - ts) / (ts_max - ts_min), 0.0, 1.0)
        return see[:, None]

    # model --------------------------------------------------------------------------------
    def fit(self, day: CoarseData, pool: Sequence[CoarseData] = ()) -> DispatchDownscaler:
        sm = day.y_filled if day.y_filled is not None else day.y
        see = day.X[:, 0]
        s = np.clip(see, self.see_clip, 1.0 - self.see_clip)
        theta = np.arccos(1.0 - 2.0 * s)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = 2.0 * sm / (theta * np.sin(theta))
        self.sm_ = np.asarray(sm, dtype=np.float64)
        self.see_ = see
        self.slope_ = slope
        return self

    def predict(self, block: FineBlock) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted("slope_")
        cell = np.asarray(block.cell)
        ok = cell >= 0
        c = np.where(ok, cell, 0)
        pred = self.sm_[c] + self.slope_[c] * (block.X[:, 0] - self.see_[c])
        pred[~ok] = np.nan
        return pred, np.full(pred.shape, np.nan)

    def predict_coarse(self, day: CoarseData) -> np.ndarray:
        self._check_fitted("sm_")
        return self.sm_.copy()

    def summary(self) -> dict:
        if not hasattr(self, "vertices_"):
            return {}
        ts_min, ts_max, tv_min, tv_max = self.vertices_
        return {"ts_min": ts_min, "ts_max": ts_max, "tv_min": tv_min, "tv_max": tv_max}
