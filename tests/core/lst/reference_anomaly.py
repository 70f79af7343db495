"""Test reference: the ``anomaly`` filler as it was before its per-pixel passes were fused
(core/lst/daypass.py), in plain whole-grid numpy expressions. The fused filler must give
the same numbers (tests/core/lst/test_lst_daypass.py). Not used by the plugin.

The default method: background + anomaly.

Model, for pixel ``x`` on day ``t`` (all in K)::

    clear:   LST = B1 + P(x) + a_t(x) + D_t(x) * S[c]
    cloudy:  LST = B1 + (g_c - g) dz + a_t(x) - D_t(x) * (1 - S[c]) + k (P(x) + r_t(x))

- ``B1 = B + g dz``: the background brought to 1 km (bilinear) plus the clear-sky
  lapse-rate correction, ``dz = z - S[z]`` the elevation above what the background sees
  (``S[.]`` averages over the background's effective footprint, see :mod:`.background`);
  under cloud the lapse rate ``g_c`` of the air applies;
- ``P`` the persistent per-pixel anomaly (land cover, soil, slope and aspect), the mean
  of the de-biased clear-sky anomalies of the other days of a moving window, shrunk
  towards an NDVI-based prior where a pixel has few clear days; under cloud it is scaled
  by ``k`` (``cloudy_anomaly_scale``): less sunlight, weaker surface contrasts;
- ``a_t`` a smooth field: the background's bias;
- ``S[c]`` the cloud fraction inside the background's footprint. The background is an
  all-weather mean, so clear pixels sit ``D S[c]`` above it and cloudy ones
  ``D (1 - S[c])`` below it; ``D``, the clear-minus-cloudy temperature difference, is
  learned with ``a`` by a Gaussian-weighted local regression of the clear-pixel anomalies
  ``LST - B1 - P`` on ``S[c]``: the cloudy-sky correction, learned from the background's
  own clear-versus-cloudy behaviour. The regression moments of the window's days are
  pooled (a reanalysis bias is persistent, ``D`` changes slowly), which keeps ``a`` and
  ``D`` stable on nearly overcast days, where one day alone cannot separate them;
- ``r_t`` today's remaining anomaly, interpolated spatially from the clear pixels (a
  clear-sky contrast too, so also scaled by ``k`` under cloud).

The window's days are weighted by a Gaussian of ``time_scale_days`` around the day.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ssm_downscaling.core.lst.background import BackgroundModel, cloud_fraction
from ssm_downscaling.core.lst.methods import DayData, DayStack, Filler, StaticLayers, lapse_corrected
from ssm_downscaling.core.lst.options import GapfillOptions
from ssm_downscaling.core.lst.smoothing import (
    BlockGrid,
    LocalFit,
    gaussian_fill,
    global_slope,
    regression_moments,
    solve_moments,
)

log = logging.getLogger(__name__)

#: pseudo-count (pixels with a cloud-fraction spread of 0.1) of the slope prior
SLOPE_PRIOR_PIXELS = 100.0
#: shrinkage of the interpolated residual where few clear pixels are near (fraction)
RESIDUAL_SHRINK = 0.05
#: the window's de-biased clear-sky anomalies are kept as int16 multiples of this (K):
#: half the memory of float32 (a China-sized 15-day window: 0.57 instead of 1.1 GB), and
#: the rounding (at most 0.005 K) is far below the LST retrieval error (about 1 K)
STACK_QUANTUM_K = 0.01


class AnomalyFiller(Filler):
    """``anomaly``: background + persistent and day-specific anomaly + cloudy-sky correction."""

    def __init__(
        self,
        static: StaticLayers,
        options: GapfillOptions,
        model: BackgroundModel | None = None,
        max_memory_mb: float = 2048.0,
    ):
        if static.footprint is None and options.cloud_correction:
            raise ValueError("the anomaly method with cloud correction needs the background footprint")
        self.static = static
        self.options = options
        self.model = model or BackgroundModel()
        self.half_window = options.window // 2
        px = static.pixel_km
        self.sigma_reg = max(options.regional_scale_km / px, 0.5)
        self.sigma_res = options.residual_scale_km / px
        self.blocks = BlockGrid.for_sigma(static.shape, self.sigma_reg)
        self.stack = DayStack(2 * self.half_window + 1, static.shape, max_memory_mb, quantum=STACK_QUANTUM_K)
        self.moments: dict[int, np.ndarray] = {}
        self.last: dict[str, float] = {}
        #: ``S[c]`` of the window's days (float32 (H, W)): add() and estimate() of one day
        #: need the same cloud fraction, which costs a pass over the footprint
        self.cloud: dict[int, np.ndarray] = {}
        self._dz0: np.ndarray | None = None

    # ------------------------------------------------------------------------------
    def _prepare(self, day: int, data: DayData) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
        """``(clear, S[c] or None, B1, A0 = LST - B1 on clear pixels)``. ``S[c]`` is computed
        once per day (the days of a window hold one each; :meth:`drop` frees it)."""
        if data.background is None:
            raise ValueError("the anomaly method needs the background of the day")
        obs = np.isfinite(data.lst)
        b1 = lapse_corrected(data.background, self.static.dz, self.model.lapse_rate)
        clear = obs & np.isfinite(b1)
        s = None
        if self.options.cloud_correction:
            s = self.cloud.get(day)
            if s is None:
                s = self.cloud[day] = cloud_fraction(data.lst, self.static.land, self.static.footprint)
        a0 = np.where(clear, data.lst - b1, np.nan).astype(np.float32)
        return clear, s, b1, a0

    def _weight(self, day: int, d: int) -> float:
        """Time weight of window day ``d`` for ``day``."""
        if abs(d - day) > self.half_window:
            return 0.0
        tau = self.options.time_scale_days
        return 1.0 if tau <= 0 else math.exp(-0.5 * ((d - day) / tau) ** 2)

    def _pooled_fit(self, day: int, today: np.ndarray | None = None) -> LocalFit:
        """``a`` and ``D`` from the time-weighted moments of the window days (blocks);
        ``today`` replaces the stored moments of ``day``."""
        pooled = np.zeros((5, *self.blocks.block_shape))
        for d, mom in self.moments.items():
            w = self._weight(day, d)
            if w > 0 and not (d == day and today is not None):
                pooled += w * mom
        if today is not None:
            pooled += today
        cc = self.options.cloud_correction
        prior = global_slope(pooled) if cc else 0.0
        fit = solve_moments(
            pooled, self.blocks, 0.0 if not math.isfinite(prior) else prior, SLOPE_PRIOR_PIXELS, fit_slope=cc
        )
        n = float(pooled[0].sum())
        a_glob = float(pooled[2].sum() - (0 if not math.isfinite(prior) else prior) * pooled[1].sum()) / n if n > 0 else 0.0
        fit.intercept = np.where(np.isfinite(fit.intercept), fit.intercept, a_glob)
        fit.slope = np.where(np.isfinite(fit.slope), fit.slope, prior if math.isfinite(prior) else 0.0)
        return fit

    # ------------------------------------------------------------------------------
    def add(self, day: int, data: DayData) -> None:
        if data.background is None:
            return
        _, s, _, a0 = self._prepare(day, data)
        p, wsum = self.persistent(day)  # from the days already in the window (before this one)
        y = np.where(wsum > 0, a0 - p, a0) if (wsum > 0).any() else a0
        self.moments[day] = regression_moments(y, s, self.sigma_reg, self.blocks)
        fit = self._pooled_fit(day)
        e = a0 - fit.intercept_fine()
        if s is not None:
            e -= fit.slope_fine() * s
        self.stack.put(day, e)

    def drop(self, day: int) -> None:
        self.stack.remove(day)
        self.moments.pop(day, None)
        self.cloud.pop(day, None)

    def persistent(self, day: int, ndvi: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(P, weight)``: the persistent anomaly for ``day`` from the other window days
        (shrunk towards the NDVI prior) and the total time weight of its clear days."""
        weights = self.stack.weights(lambda d: 0.0 if d == day else self._weight(day, d))
        if not weights.any():
            z = np.zeros(self.static.shape, dtype=np.float32)
            return z, z
        num, den = self.stack.window_sums(weights)
        prior = np.zeros(self.static.shape, dtype=np.float32)
        if ndvi is not None and self.static.footprint is not None:
            nd = ndvi - self.static.footprint.smooth(ndvi)
            with np.errstate(invalid="ignore", divide="ignore"):
                p_obs = np.where(den > 0, num / den, np.nan)
            ok = np.isfinite(p_obs) & np.isfinite(nd)
            if ok.sum() > 10 and float(np.var(nd[ok])) > 1e-6:
                b = float(np.cov(nd[ok], p_obs[ok], bias=True)[0, 1] / np.var(nd[ok]))
                a = float(p_obs[ok].mean() - b * nd[ok].mean())
                prior = np.where(np.isfinite(nd), a + b * nd, a).astype(np.float32)
                self.last["ndvi_slope"] = b
        k = self.options.prior_days
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(den + k > 0, (num + k * prior) / (den + k), prior)
        return p.astype(np.float32), den

    def estimate(self, day: int, data: DayData) -> np.ndarray | None:
        if data.background is None:
            return None
        opt = self.options
        clear, s, b1, a0 = self._prepare(day, data)
        self.cloud.pop(day, None)  # the day's last use
        p, _ = self.persistent(day, data.ndvi)
        y = (a0 - p).astype(np.float32)
        # today's moments with the final P, pooled with the other window days (as stored)
        fit = self._pooled_fit(day, regression_moments(y, s, self.sigma_reg, self.blocks))
        a_f = fit.intercept_fine()
        est = b1 + np.float32(opt.cloudy_anomaly_scale) * p + a_f
        g, gc = self.model.lapse_rate, self.model.cloudy_lapse_rate
        if self.static.dz is not None and math.isfinite(g) and math.isfinite(gc) and gc != g:
            if self._dz0 is None:
                self._dz0 = np.nan_to_num(self.static.dz, nan=0.0)
            est += np.float32(gc - g) * self._dz0
        resid = y - a_f
        if s is not None:
            d_f = fit.slope_fine()
            est -= d_f * (1.0 - s)
            resid -= d_f * s
        if self.sigma_res > 0 and np.isfinite(resid).any():
            r = gaussian_fill(resid, self.sigma_res, RESIDUAL_SHRINK)  # a clear-sky anomaly too: damped by k
            est += np.float32(opt.cloudy_anomaly_scale) * np.nan_to_num(r, nan=0.0)
        self.last.update(
            clear_fraction=float(clear.mean()),
            intercept_mean=float(np.nanmean(fit.intercept)),
            cloud_delta_mean=float(np.nanmean(fit.slope)) if s is not None else 0.0,
        )
        return est.astype(np.float32)

    def close(self) -> None:
        self.stack.close()
        self.cloud.clear()
