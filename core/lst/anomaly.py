"""The default method: background + anomaly.

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

The per-pixel work of a day runs in the fused passes of :mod:`.daypass` (no full-size
temporaries besides the day's ``S[c]``, ``y`` and the estimate itself); only block-grid
fields (the fits, the remaining anomaly) are whole arrays here.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from . import daypass
from .background import BackgroundModel, cloud_fraction_cells
from .daypass import add_upsampled, estimate_pass, prepare_pass, residual_pass
from .kernels import window_sums
from .methods import DayData, DayStack, Filler, StaticLayers
from .options import GapfillOptions
from .smoothing import BlockGrid, LocalFit, gaussian_fill_blocks, global_slope, moments_from_sums, solve_moments

log = logging.getLogger(__name__)

#: pseudo-count (pixels with a cloud-fraction spread of 0.1) of the slope prior
SLOPE_PRIOR_PIXELS = 100.0
#: shrinkage of the interpolated residual where few clear pixels are near (fraction)
RESIDUAL_SHRINK = 0.05
#: the window's de-biased clear-sky anomalies are kept as int16 multiples of this (K):
#: half the memory of float32 (a China-sized 15-day window: 0.57 instead of 1.1 GB), and
#: the rounding (at most 0.005 K) is far below the LST retrieval error (about 1 K)
STACK_QUANTUM_K = 0.01
#: placeholder of an array a pass does not use (its flag is off)
_DUMMY = np.zeros((1, 1), dtype=np.float32)


class _Moments2:
    """Running means and centred second moments of ``(x, y)`` pairs, merged block by block
    (Chan et al.), in float64: a regression line over a whole grid without whole-grid arrays."""

    def __init__(self) -> None:
        self.n = 0
        self.mean_x = self.mean_y = 0.0
        self.sxx = self.sxy = 0.0

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        m = x.size
        if m == 0:
            return
        x = x.astype(np.float64)
        y = y.astype(np.float64)
        mx, my = float(x.mean()), float(y.mean())
        dx = x - mx
        sxx, sxy = float(dx @ dx), float(dx @ (y - my))
        n = self.n + m
        ddx, ddy = mx - self.mean_x, my - self.mean_y
        self.sxx += sxx + ddx * ddx * self.n * m / n
        self.sxy += sxy + ddx * ddy * self.n * m / n
        self.mean_x += ddx * m / n
        self.mean_y += ddy * m / n
        self.n = n

    def var_x(self) -> float:
        return self.sxx / self.n if self.n else 0.0

    def cov(self) -> float:
        return self.sxy / self.n if self.n else 0.0


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
        #: ``S[c]`` of the window's days on the background cells: add() and estimate() of
        #: one day need the same cloud fraction, which costs a pass over the footprint
        self.cloud: dict[int, np.ndarray] = {}
        self._dz0_arr: np.ndarray | None = None

    # ------------------------------------------------------------------------------
    def _cloud(self, day: int, data: DayData) -> np.ndarray | None:
        """``S[c]`` of the day at 1 km (float32, NaN = 0) or None without cloud correction.
        Its cell values are computed once per day and kept while the day is in the window
        (a few hundred kB, not a full-size array); :meth:`drop` or :meth:`estimate` free them."""
        if not self.options.cloud_correction:
            return None
        cells = self.cloud.get(day)
        if cells is None:
            cells = self.cloud[day] = cloud_fraction_cells(data.lst, self.static.land, self.static.footprint)
        return np.ascontiguousarray(self.static.footprint.to_fine(cells), dtype=np.float32)

    def _pass1(self, day: int, data: DayData, s: np.ndarray | None, ndvi: np.ndarray | None,
               mode: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:data:`.daypass.prepare_pass` of the day: ``(block sums, out1, out2)`` with
        ``out1 = A0`` (mode 0) or ``y = A0 - P`` and ``out2 = B1 + kc P`` (mode 1)."""
        shape = self.static.shape
        lst = np.ascontiguousarray(data.lst, dtype=np.float32)
        bg = np.ascontiguousarray(data.background, dtype=np.float32)
        g = self.model.lapse_rate
        use_dz = self.static.dz is not None and math.isfinite(g) and g != 0
        slots, weights = self.stack.active(lambda d: 0.0 if d == day else self._weight(day, d))
        prior = self._ndvi_prior(slots, weights, ndvi) if len(slots) else None
        out1 = np.empty(shape, dtype=np.float32)
        out2 = np.empty(shape, dtype=np.float32) if mode == 1 else _DUMMY
        sums = prepare_pass(
            lst, bg, use_dz, self._dz0() if use_dz else _DUMMY, float(g) if use_dz else 0.0,
            self.stack.data, slots, weights, 1.0 if self.stack.quantum is None else self.stack.quantum,
            float(self.options.prior_days), prior is not None, prior[0] if prior is not None else _DUMMY,
            prior[1] if prior is not None else 0.0, prior[2] if prior is not None else 0.0,
            s is not None, s if s is not None else _DUMMY, self.blocks.factor,
            float(self.options.cloudy_anomaly_scale), mode, out1, out2,
        )
        return sums, out1, (out2 if mode == 1 else None)

    def _dz0(self) -> np.ndarray:
        """``dz`` with NaN as 0 (float32, computed once)."""
        if self._dz0_arr is None:
            self._dz0_arr = np.ascontiguousarray(np.nan_to_num(self.static.dz, nan=0.0), dtype=np.float32)
        return self._dz0_arr

    def _ndvi_prior(self, slots: np.ndarray, weights: np.ndarray,
                    ndvi: np.ndarray | None) -> tuple[np.ndarray, float, float] | None:
        """``(nd, a, b)``: the NDVI prior of the persistent anomaly is ``a + b nd`` (``a``
        where ``nd`` is NaN), ``nd = NDVI - S[NDVI]``, ``a, b`` the least-squares line of the
        window's mean anomaly on ``nd``; None without NDVI or when ``nd`` hardly varies."""
        if ndvi is None or self.static.footprint is None:
            return None
        nd = np.ascontiguousarray(ndvi - self.static.footprint.smooth(ndvi), dtype=np.float32)
        quantum = 1.0 if self.stack.quantum is None else self.stack.quantum
        stats = _Moments2()
        h = nd.shape[0]
        for r0 in range(0, h, daypass.ROWS):  # the window's mean anomaly, a block of rows at a time
            r1 = min(h, r0 + daypass.ROWS)
            sub = self.stack.data[slots, r0:r1]
            num, den = window_sums(sub, weights, quantum)
            with np.errstate(invalid="ignore", divide="ignore"):
                p_obs = np.where(den > 0, num / den, np.nan)
            ok = np.isfinite(p_obs) & np.isfinite(nd[r0:r1])
            stats.add(nd[r0:r1][ok], p_obs[ok])
        if stats.n <= 10 or stats.var_x() <= 1e-6:
            return None
        b = stats.cov() / stats.var_x()
        a = stats.mean_y - b * stats.mean_x
        self.last["ndvi_slope"] = b
        return nd, a, b

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
    def _fine_fields(self, fit: LocalFit) -> tuple[np.ndarray, np.ndarray]:
        """The fit's ``a`` and ``D`` block fields, edge-padded for :mod:`.daypass`."""
        return self.blocks.padded(fit.intercept), self.blocks.padded(fit.slope)

    def add(self, day: int, data: DayData) -> None:
        if data.background is None:
            return
        s = self._cloud(day, data)
        # P from the days already in the window (before this one)
        sums, a0, _ = self._pass1(day, data, s, None, mode=0)
        self.moments[day] = moments_from_sums(sums, self.sigma_reg, self.blocks)
        fit = self._pooled_fit(day)
        pad_a, pad_d = self._fine_fields(fit)
        slot = self.stack.reserve(day)
        codes = self.stack.quantum is not None
        residual_pass(a0, s is not None, s if s is not None else _DUMMY, *self.blocks.axes(), pad_a, pad_d,
                      codes, self.stack.quantum if codes else 1.0, self.stack.data[slot])

    def drop(self, day: int) -> None:
        self.stack.remove(day)
        self.moments.pop(day, None)
        self.cloud.pop(day, None)

    def persistent(self, day: int, ndvi: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(P, weight)``: the persistent anomaly for ``day`` from the other window days
        (shrunk towards the NDVI prior) and the total time weight of its clear days.
        Full-size arrays, for inspection: :meth:`estimate` computes ``P`` on the fly."""
        weights = self.stack.weights(lambda d: 0.0 if d == day else self._weight(day, d))
        if not weights.any():
            z = np.zeros(self.static.shape, dtype=np.float32)
            return z, z
        num, den = self.stack.window_sums(weights)
        slots, w = self.stack.active(lambda d: 0.0 if d == day else self._weight(day, d))
        got = self._ndvi_prior(slots, w, ndvi)
        prior = np.zeros(self.static.shape, dtype=np.float32)
        if got is not None:
            nd, a, b = got
            prior = np.where(np.isfinite(nd), a + b * nd, a).astype(np.float32)
        k = self.options.prior_days
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(den + k > 0, (num + k * prior) / (den + k), prior)
        return p.astype(np.float32), den

    def estimate(self, day: int, data: DayData) -> np.ndarray | None:
        if data.background is None:
            return None
        opt = self.options
        s = self._cloud(day, data)
        self.cloud.pop(day, None)  # the day's last use
        sums, y, est = self._pass1(day, data, s, data.ndvi, mode=1)
        # today's moments with the final P, pooled with the other window days (as stored)
        fit = self._pooled_fit(day, moments_from_sums(sums, self.sigma_reg, self.blocks))
        pad_a, pad_d = self._fine_fields(fit)
        g, gc = self.model.lapse_rate, self.model.cloudy_lapse_rate
        use_cdz = self.static.dz is not None and math.isfinite(g) and math.isfinite(gc) and gc != g
        res = BlockGrid.for_sigma(self.static.shape, self.sigma_res) if self.sigma_res > 0 else BlockGrid((1, 1), 1)
        counts = estimate_pass(est, y, s is not None, s if s is not None else _DUMMY, *self.blocks.axes(), pad_a, pad_d,
                               use_cdz, float(gc - g) if use_cdz else 0.0, self._dz0() if use_cdz else _DUMMY,
                               res.factor if self.sigma_res > 0 else 64)  # no counts needed: any block size
        del y, s
        if self.sigma_res > 0 and counts[0].sum() > 0:
            # today's remaining anomaly, interpolated (a clear-sky anomaly too: damped by k)
            r = gaussian_fill_blocks(counts, res, self.sigma_res, RESIDUAL_SHRINK)
            add_upsampled(est, *res.axes(), res.padded(r), float(opt.cloudy_anomaly_scale))
        self.last.update(
            clear_fraction=float(sums[0].sum()) / est.size,
            intercept_mean=float(np.nanmean(fit.intercept)),
            cloud_delta_mean=float(np.nanmean(fit.slope)) if opt.cloud_correction else 0.0,
        )
        return est

    def close(self) -> None:
        self.stack.close()
        self.cloud.clear()
