"""The default method: background + anomaly.

Model, for pixel ``x`` on day ``t`` (all in K)::

    LST = B1 + P(x) + a_t(x) - D_t(x) * (c - S[c]) + r_t(x)

- ``B1`` the background brought to 1 km (bilinear) plus the lapse-rate correction
  ``gamma * (z - S[z])``, where ``S[.]`` averages over the background's footprint;
- ``P`` the persistent per-pixel anomaly (land cover, soil, slope and aspect, elevation
  beyond the lapse rate), learned from the clear days of a moving window;
- ``a_t`` a smooth field (the background's bias of the day), fitted locally;
- ``c`` the cloud indicator and ``S[c]`` the cloud fraction inside the background's
  footprint: the background is an all-weather mean, so clear pixels sit ``D_t * S[c]``
  above it and cloudy ones ``D_t * (1 - S[c])`` below it. ``D_t``, the clear-minus-cloudy
  temperature difference, is learned each day by a local regression of the clear-pixel
  anomalies on ``S[c]``: the cloudy-sky correction learned from the background's own
  clear-versus-cloudy behaviour;
- ``r_t`` today's remaining anomaly, interpolated spatially from the clear pixels.

Each day entering the window is fitted alone (``a``, ``D``) and its de-biased anomaly
``E = LST - B1 - a - D S[c]`` stored; ``P`` for day ``t`` is the (time-weighted) mean of
``E`` over the other days of the window, shrunk towards an NDVI-based prior where a pixel
has few clear days; then today's ``a_t``, ``D_t`` are refitted on ``LST - B1 - P`` and the
cloudy pixels get ``B1 + k P + a_t - D_t (1 - S[c]) + r_t`` (``k = cloudy_anomaly_scale``).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from .kernels import window_sums
from .methods import DayData, DayStack, Filler, StaticLayers, lapse_corrected
from .options import GapfillOptions
from .smoothing import BlockGrid, LocalFit, gaussian_fill, global_linear_fit, local_linear_fit

log = logging.getLogger(__name__)

#: pseudo-count (pixels) of the window prior of today's intercept
INTERCEPT_PRIOR_PIXELS = 25.0
#: pseudo-count (pixels with a cloud-fraction spread of 0.1) of the slope prior
SLOPE_PRIOR_PIXELS = 100.0
#: shrinkage of the interpolated residual where few clear pixels are near (fraction)
RESIDUAL_SHRINK = 0.05


class AnomalyFiller(Filler):
    """``anomaly``: background + persistent and day-specific anomaly + cloudy-sky correction."""

    def __init__(
        self,
        static: StaticLayers,
        options: GapfillOptions,
        lapse_rate: float = math.nan,
        max_memory_mb: float = 2048.0,
    ):
        if static.footprint is None and options.cloud_correction:
            raise ValueError("the anomaly method with cloud correction needs the background footprint")
        self.static = static
        self.options = options
        self.lapse_rate = lapse_rate
        self.half_window = options.window // 2
        px = static.pixel_km
        self.sigma_reg = max(options.regional_scale_km / px, 0.5)
        self.sigma_res = options.residual_scale_km / px
        self.blocks = BlockGrid.for_sigma(static.shape, self.sigma_reg)
        self.stack = DayStack(2 * self.half_window + 1, static.shape, max_memory_mb)
        self.fits: dict[int, LocalFit] = {}
        self.last: dict[str, float] = {}

    # ------------------------------------------------------------------------------
    def _prepare(self, data: DayData) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
        """``(clear, S[c], B1, A0 = LST - B1 on clear pixels)``."""
        if data.background is None:
            raise ValueError("the anomaly method needs the background of the day")
        obs = np.isfinite(data.lst)
        b1 = lapse_corrected(data.background, self.static.dz, self.lapse_rate)
        clear = obs & np.isfinite(b1)
        s = None
        if self.options.cloud_correction:
            land = obs if self.static.land is None else (self.static.land | obs)
            cloud = np.where(land, (~obs).astype(np.float32), np.nan)
            s = self.static.footprint.smooth(cloud)
            s = np.where(np.isfinite(s), s, 0.0).astype(np.float32)
        a0 = np.where(clear, data.lst - b1, np.nan).astype(np.float32)
        return clear, s, b1, a0

    def _fit(self, y: np.ndarray, s: np.ndarray | None, slope_prior: float) -> LocalFit:
        return local_linear_fit(
            y,
            s,
            self.sigma_reg,
            slope_prior=slope_prior,
            prior_pixels=SLOPE_PRIOR_PIXELS,
            grid=self.blocks,
        )

    def _window_slope(self, day: int) -> float:
        """Support-weighted mean slope of the other window days (0 without any)."""
        num = den = 0.0
        for d, f in self.fits.items():
            if d == day:
                continue
            ok = np.isfinite(f.slope)
            num += float((f.slope[ok] * f.support[ok]).sum())
            den += float(f.support[ok].sum())
        return num / den if den > 0 else 0.0

    def _window_intercept(self, day: int) -> np.ndarray | None:
        """Support-weighted mean intercept blocks of the other window days."""
        num = np.zeros(self.blocks.block_shape)
        den = np.zeros(self.blocks.block_shape)
        for d, f in self.fits.items():
            if d == day:
                continue
            ok = np.isfinite(f.intercept)
            num[ok] += f.intercept[ok] * f.support[ok]
            den[ok] += f.support[ok]
        if not (den > 0).any():
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan)

    def _day_slope(self, y: np.ndarray, s: np.ndarray | None, day: int) -> float:
        if s is None:
            return 0.0
        _, b, _, _ = global_linear_fit(y, s)
        return b if math.isfinite(b) else self._window_slope(day)

    @staticmethod
    def _fill_blocks(arr: np.ndarray, fallback: np.ndarray | float | None) -> np.ndarray:
        out = arr.copy()
        bad = ~np.isfinite(out)
        if bad.any():
            if isinstance(fallback, np.ndarray):
                out[bad] = fallback[bad]
                bad = ~np.isfinite(out)
            out[bad] = fallback if isinstance(fallback, float) and math.isfinite(fallback) else 0.0
        return out

    # ------------------------------------------------------------------------------
    def add(self, day: int, data: DayData) -> None:
        if data.background is None:
            return
        clear, s, _, a0 = self._prepare(data)
        fit = self._fit(a0, s, self._day_slope(a0, s, day))
        a_glob = float(np.nanmean(a0)) if clear.any() else 0.0
        fit.intercept = self._fill_blocks(fit.intercept, a_glob)
        fit.slope = self._fill_blocks(fit.slope, 0.0)
        e = a0 - fit.intercept_fine()
        if s is not None:
            e -= fit.slope_fine() * s
        self.stack.put(day, e)
        self.fits[day] = fit

    def drop(self, day: int) -> None:
        self.stack.remove(day)
        self.fits.pop(day, None)

    def persistent(self, day: int, ndvi: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(P, weight)``: the persistent anomaly for ``day`` from the other window days
        (shrunk towards the NDVI prior) and the total time weight of its clear days."""
        tau = self.options.time_scale_days
        half = self.half_window

        def w(d: int) -> float:
            if d == day or abs(d - day) > half:
                return 0.0
            return 1.0 if tau <= 0 else math.exp(-0.5 * ((d - day) / tau) ** 2)

        weights = self.stack.weights(w)
        num, den = window_sums(self.stack.data, weights)
        prior = np.zeros(self.static.shape, dtype=np.float32)
        if ndvi is not None and self.static.footprint is not None:
            nd = ndvi - self.static.footprint.smooth(ndvi)
            with np.errstate(invalid="ignore", divide="ignore"):
                p_obs = np.where(den > 0, num / den, np.nan)
            a, b, n, _ = global_linear_fit(p_obs, nd)
            if math.isfinite(b):
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
        clear, s, b1, a0 = self._prepare(data)
        p, wsum = self.persistent(day, data.ndvi)
        y = np.where(wsum > 0, a0 - p, np.nan).astype(np.float32)
        fit = self._fit(y, s, self._day_slope(y, s, day))
        prior = self._window_intercept(day)
        inter = fit.intercept
        if prior is not None:  # shrink towards the window's intercept where today says little
            n = fit.support
            kk = INTERCEPT_PRIOR_PIXELS
            with np.errstate(invalid="ignore"):
                blended = (n * np.nan_to_num(inter) + kk * prior) / (n + kk)
            inter = np.where(np.isfinite(prior), blended, inter)
            inter = self._fill_blocks(inter, prior)
        a_glob = float(np.nanmean(y)) if np.isfinite(y).any() else 0.0
        inter = self._fill_blocks(inter, a_glob)
        slope = self._fill_blocks(fit.slope, self._window_slope(day))
        a_f = self.blocks.upsample(inter)
        est = b1 + np.float32(opt.cloudy_anomaly_scale) * p + a_f
        resid = y - a_f
        if s is not None:
            d_f = self.blocks.upsample(slope)
            est -= d_f * (1.0 - s)
            resid -= d_f * s
        if self.sigma_res > 0 and np.isfinite(resid).any():
            r = gaussian_fill(resid, self.sigma_res, RESIDUAL_SHRINK)
            est += np.nan_to_num(r, nan=0.0)
        self.last = {
            "clear_fraction": float(clear.mean()),
            "intercept_mean": float(np.nanmean(inter)),
            "cloud_delta_mean": float(np.nanmean(slope)) if s is not None else 0.0,
        }
        return est.astype(np.float32)

    def close(self) -> None:
        self.stack.close()
