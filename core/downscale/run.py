"""Downscaling a daily series: aggregate, fit, predict at 1 km, correct, flag, write.

Three stages over the selected days; only coarse-size arrays are kept across days, and a
day's 1 km work is done in row blocks (one day's 1 km output arrays are held while its
residual correction runs):

A. per day, the method's features are computed from the raw 1 km predictors block by
   block and aggregated (area-weighted, over pixels where every feature is valid) to the
   coarse cells, together with the coarse SSM;
B. the within-cell anomaly gain is estimated once from all days (:mod:`.scale`); per day
   (plus +/- ``pool_days`` neighbouring days), the estimator is fitted at the coarse scale
   and its coarse residuals are kept for seam filling;
C. per day, the model is applied at 1 km; its within-cell anomalies (value minus the cell
   mean) are averaged with those of the days within +/- ``anomaly_days`` (the persistent
   part of the pattern is kept, day-to-day model noise averaged down) and scaled by the
   gain, keeping the day's cell means; the residual correction makes each observed
   cell's 1 km mean equal the coarse value (seam cells get the cell's residual borrowed
   from the nearest observed days, or none), values are clipped to the physical range
   keeping cell means, flags are set (DESIGN.md 3) and the three rasters are written.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..argcheck import check_downscale_args
from ..errors import GridError, SeriesError, SsmError
from ..grid import Grid
from ..membership import Membership
from ..preflight import PercentCoarse, downscale_preflight
from ..progress import CancelFn, Progress, ProgressFn
from ..series import FLAG_NODATA, DailySeries, LayerSource, RasterWriter, day_filename
from .base import PREDICTOR_ORDER, CoarseData, Downscaler, FineBlock
from .interp import interpolate, node_spacing
from .methods import METHODS, make_downscaler
from .plan import grid_plan
from .predictors import (
    ArrayCoarse,
    ArrayPredictors,
    FolderCoarse,
    FolderPredictors,
    check_covers,
    coarse_grid_of,
    common_days,
)
from .residual import CorrectionInfo, cell_means, clip_preserving_means, correct
from .scale import anomaly_gain, anomaly_gains, combine_anomalies, combine_anomalies_smooth, smooth_anomaly
from .seams import borrow_in_time, fill_coarse
from .stfilter import Covariance, estimate_covariance, krige

log = logging.getLogger(__name__)

#: flag values (DESIGN.md 3)
FLAG_OBSERVED, FLAG_SEAM, FLAG_LST_FILLED, FLAG_BOTH = 0, 1, 2, 3
FLAG_LEGEND = (
    "SSM flags: 0 coarse SSM observed; 1 seam-filled (coarse SSM missing that day); "
    "2 LST gap-filled under cloud (coarse observed); 3 seam-filled and LST gap-filled; 255 no estimate"
)
#: residual corrections: ``filter`` (default of the model-based methods) treats the coarse
#: value as a noisy observation and spreads its space-time filtered residual smoothly;
#: ``coherent`` makes every observed cell's 1 km mean equal its coarse value exactly
#: (interpolated residual, then a constant shift per cell); ``smooth`` is exact and
#: smooth across cell edges; ``cell`` a constant per cell; ``none`` the model alone
RESIDUAL_MODES = ("filter", "coherent", "smooth", "cell", "none")
RESIDUAL_ALIASES = {"interp": "coherent"}
#: width (m3/m3) of the soft margin inside MIN_SSM..MAX_SSM in the ``filter`` mode
SOFT_MARGIN = 0.02
#: memory (bytes) for day predictions kept from the first pass of the static/dynamic split
KEEP_BYTES = 512 * 1024 * 1024
#: share of pixel-days outside MIN_SSM..MAX_SSM above which the run warns
CLIPPED_WARN = 0.001
PREFIX_SSM, PREFIX_FLAGS, PREFIX_UNC = "ssm", "ssm_flags", "ssm_uncertainty"
COVERAGE_FIELDS = (
    "date", "method", "coarse_cells", "coarse_observed", "coarse_seam", "land_pixels", "estimated_pct",
    "seam_filled_pct", "lst_gapfilled_pct", "clipped_pixels", "max_shift", "anomaly_gain", "anomaly_gain_static",
    "bandwidth_km",
    "sigma_coarse", "retrieval_error", "mean_abs_departure",
)


@dataclass
class DayResult:
    """One day's 1 km outputs: ``ssm`` float32 (NaN none), ``flags`` uint8, ``uncertainty``
    float32 (NaN when the method has none), and the day's ``stats`` (a coverage row)."""

    day: dt.date
    ssm: np.ndarray
    flags: np.ndarray
    uncertainty: np.ndarray
    stats: dict


@dataclass
class DownscaleSummary:
    """What a run did: the days written and skipped (with reasons), per-day coverage rows,
    the files written per output, and the grids."""

    method: str
    days: list[dt.date] = field(default_factory=list)
    skipped: dict[dt.date, str] = field(default_factory=dict)
    coverage: list[dict] = field(default_factory=list)
    files: dict[str, list[Path]] = field(default_factory=lambda: {"ssm": [], "flags": [], "uncertainty": []})
    coverage_csv: Path | None = None
    fine: Grid | None = None
    coarse: Grid | None = None

    @property
    def mean_estimated_pct(self) -> float:
        vals = [r["estimated_pct"] for r in self.coverage if r["estimated_pct"] == r["estimated_pct"]]
        return float(np.mean(vals)) if vals else math.nan


def _blocks(grid: Grid, block_pixels: int) -> list[tuple[int, int]]:
    return grid.row_blocks(max(1, block_pixels // max(grid.width, 1)))


def soft_bounds(field_: np.ndarray, lo: float, hi: float, info: CorrectionInfo | None = None,
                margin: float = SOFT_MARGIN) -> np.ndarray:
    """In place: values within ``margin`` of a bound (or beyond it) are compressed
    exponentially towards it, ``lo + m exp((x - lo - m) / m)`` below ``lo + m`` (and the
    mirror image above ``hi - m``): continuous with slope 1 at the margin, strictly inside
    the range, so the product never piles up at MIN_SSM or MAX_SSM. ``info.clipped``
    counts the pixels that were beyond a bound."""
    m = min(margin, (hi - lo) / 4.0)
    x = field_
    ok = np.isfinite(x)
    if info is not None:
        info.clipped += int((ok & ((x < lo) | (x > hi))).sum())
    low = ok & (x < lo + m)
    if low.any():
        x[low] = (lo + m * np.exp((x[low].astype(np.float64) - lo - m) / m)).astype(np.float32)
    high = ok & (x > hi - m)
    if high.any():
        x[high] = (hi - m * np.exp((hi - m - x[high].astype(np.float64)) / m)).astype(np.float32)
    return x


class Engine:
    """Runs stages A-C for one estimator over given days (see the module docstring)."""

    def __init__(
        self,
        template: Downscaler,
        fine_source: FolderPredictors | ArrayPredictors,
        coarse_source: FolderCoarse | ArrayCoarse,
        membership: Membership,
        *,
        pool_days: int = 0,
        seam_days: int = 7,
        ssm_range: tuple[float, float] = (0.01, 0.6),
        residual: str | None = None,
        min_fit_coverage: float = 0.5,
        block_pixels: int = 1_000_000,
        anomaly_gain: float | str = "auto",
        anomaly_days: int = 1,
        noise_sd: float | None = None,
    ):
        self.template = template
        self.fine_source = fine_source
        self.coarse_source = coarse_source
        self.m = membership
        self.fine = membership.fine
        self.coarse = membership.coarse
        self.pool_days = int(pool_days)
        self.seam_days = int(seam_days)
        lo, hi = map(float, ssm_range)
        if not lo < hi:
            raise SsmError(f"The physical range of soil moisture must have min < max, got {lo} and {hi}")
        self.lo, self.hi = lo, hi
        self.residual = residual or template.residual
        self.residual = RESIDUAL_ALIASES.get(self.residual, self.residual)
        if self.residual not in RESIDUAL_MODES:
            raise SsmError(f"Unknown residual correction {self.residual!r}; choose {', '.join(RESIDUAL_MODES)}")
        if noise_sd is not None and not (isinstance(noise_sd, (int, float)) and 0 <= noise_sd < 1
                                         and math.isfinite(noise_sd)):
            raise SsmError(f"The retrieval error must be a number in 0..1 m3/m3 (or None to estimate it), got {noise_sd!r}")
        self.noise_sd = None if noise_sd is None else float(noise_sd)
        self.covariance: Covariance | None = None
        self.filtered: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.coarse_pred: dict[int, np.ndarray] = {}
        #: static/dynamic split of the anomaly gain (filter mode, gain estimated): the gain of
        #: the persistent pattern and each pixel's run-mean anomaly (pass 1)
        self.gain_static: float | None = None
        self.static: np.ndarray | None = None
        self.min_fit_coverage = float(min_fit_coverage)
        if anomaly_gain != "auto" and not (isinstance(anomaly_gain, (int, float)) and 0 <= anomaly_gain <= 2):
            raise SsmError(f"The anomaly gain must be 'auto' or a number in 0..2, got {anomaly_gain!r}")
        self.gain_option = anomaly_gain
        if int(anomaly_days) < 0:
            raise SsmError(f"The anomaly window must be 0 or more days, got {anomaly_days}")
        self.anomaly_days = int(anomaly_days)
        self.gain = 1.0
        self.blocks = _blocks(self.fine, block_pixels)
        self.block_pixels = block_pixels
        self.n = self.coarse.size
        self.shape = self.coarse.shape
        plan = grid_plan(membership, self.blocks)  # node_xy, fr, fc: cached on disk by grid signature
        self.node_xy = plan.node_xy
        self.spacing = node_spacing(self.node_xy)
        self.index = membership.index
        self.weights = membership.weights
        self.cover = np.nan_to_num(membership.coverage().ravel(), nan=0.0)
        self.members = membership.members.ravel()
        self.fr, self.fc = plan.fr, plan.fc

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _land(raw: dict[str, np.ndarray]) -> np.ndarray:
        """Land pixels: where any surface predictor (LST, NDVI, albedo, ...) is valid; the
        DEM is not used, as it is valid over lakes too."""
        layers = [np.isfinite(v) for k, v in raw.items() if k != "dem"] or [np.isfinite(v) for v in raw.values()]
        return np.logical_or.reduce(layers)

    def _weights_flat(self, r0: int, nr: int, ok: np.ndarray) -> np.ndarray | None:
        if self.weights is None:
            return None
        return np.broadcast_to(self.weights, self.fine.shape)[r0 : r0 + nr][ok]

    # -- stage A -----------------------------------------------------------------------------
    def aggregate(self, day: dt.date, prog: Progress) -> tuple[Downscaler, CoarseData, np.ndarray]:
        est = self.template.clone()
        if type(est).prepare is not Downscaler.prepare:
            est.prepare(self.fine_source.read_sample(day, 250_000))
        k = len(est.feature_names)
        vsum = np.zeros((self.n, k))
        wsum = np.zeros(self.n)
        count = np.zeros(self.n, dtype=np.int64)
        for r0, nr in self.blocks:
            raw = self.fine_source.read(day, r0, nr)
            X = est.features(raw)
            idx = self.index[r0 : r0 + nr].ravel()
            ok = self._land(raw).ravel() & (idx >= 0) & np.isfinite(X).all(axis=1)
            cells = idx[ok]
            w = self._weights_flat(r0, nr, ok.reshape(nr, -1))
            wsum += np.bincount(cells, weights=w, minlength=self.n)
            count += np.bincount(cells, minlength=self.n)
            for j in range(k):
                vals = X[ok, j] if w is None else X[ok, j] * w
                vsum[:, j] += np.bincount(cells, weights=vals, minlength=self.n)
            prog.advance()
        with np.errstate(invalid="ignore", divide="ignore"):
            Xc = vsum / wsum[:, None]
        Xc[count == 0] = np.nan
        frac = np.where(self.members > 0, count / np.maximum(self.members, 1), 0.0)
        usable = self.cover * frac >= self.min_fit_coverage
        y = np.asarray(self.coarse_source.read(day), dtype=np.float64).ravel()
        data = CoarseData(y, Xc, usable, self.node_xy, self.shape, est.feature_names, day=day.toordinal())
        return est, data, count

    # -- stage C -----------------------------------------------------------------------------
    def predict_day(self, day: dt.date, est: Downscaler, prog: Progress) -> dict:
        """The model at 1 km for one day (no correction): ``pred``, ``unc`` float32 full
        arrays, ``lstf`` (LST gap-filled pixels) and the number of land pixels."""
        H, W = self.fine.shape
        pred = np.full((H, W), np.nan, dtype=np.float32)
        unc = np.full((H, W), np.nan, dtype=np.float32)
        lstf = np.zeros((H, W), dtype=bool)
        land_n = 0
        for r0, nr in self.blocks:
            raw = self.fine_source.read(day, r0, nr)
            X = est.features(raw)
            land = self._land(raw).ravel()
            land_n += int(land.sum())
            ok = land & np.isfinite(X).all(axis=1)
            fr = self.fr[r0 : r0 + nr].ravel()[ok]
            fc = self.fc[r0 : r0 + nr].ravel()[ok]
            cell = self.index[r0 : r0 + nr].ravel()[ok]
            p, u = est.predict(FineBlock(X[ok], fr, fc, cell))
            bp = np.full(ok.size, np.nan, dtype=np.float32)
            bu = np.full(ok.size, np.nan, dtype=np.float32)
            bp[ok] = p
            bu[ok] = u
            pred[r0 : r0 + nr] = bp.reshape(nr, W)
            unc[r0 : r0 + nr] = bu.reshape(nr, W)
            fl = self.fine_source.lst_flags(day, r0, nr)
            if fl is not None:
                lstf[r0 : r0 + nr] = np.asarray(fl) == 1
            prog.advance()
        mean, _ = cell_means(pred, self.index, self.weights, self.n)
        return {"pred": pred, "unc": unc, "lstf": lstf, "land_n": land_n, "mean": mean}

    def apply(self, day: dt.date, est: Downscaler, data: CoarseData, count: np.ndarray,
              resid_series: dict[int, np.ndarray], prog: Progress | None = None,
              predicted: dict | None = None, window: Sequence[dict] = ()) -> DayResult:
        """Stage C for one day: ``predicted`` (from :meth:`predict_day`, computed when None)
        and the predictions of neighbouring days whose within-cell anomalies are averaged
        with today's (``window``)."""
        H, W = self.fine.shape
        pd = predicted if predicted is not None else self.predict_day(day, est, prog or Progress(len(self.blocks)))
        pred, unc, lstf, land_n = pd["pred"].copy(), pd["unc"], pd["lstf"], pd["land_n"]
        if self.residual == "filter":
            if self.gain != 1.0 or window or self.static is not None:
                combine_anomalies_smooth(pred, pd["mean"], [(w["pred"], w["mean"]) for w in window], self.fr, self.fc,
                                         self.shape, self.gain, static=self.static, k_static=self.gain_static)
        elif self.gain != 1.0 or window:
            combine_anomalies(pred, pd["mean"], [(w["pred"], w["mean"]) for w in window], self.index, self.gain)
        observed = np.isfinite(data.y) & (count > 0)
        info = CorrectionInfo()
        filt_var = None
        if self.residual == "filter":
            mean_now, _ = cell_means(pred, self.index, self.weights, self.n)
            field_, filt_var, borrowed_cells = self._apply_filter(pred, mean_now, data, count)
        elif self.residual != "none":
            mean_pred, _ = cell_means(pred, self.index, self.weights, self.n)
            borrowed = borrow_in_time(resid_series, data.day, self.seam_days) if resid_series else np.full(self.n, np.nan)
            delta = np.where(observed, data.y - mean_pred, borrowed)
            mode = "interp" if self.residual == "coherent" else self.residual
            field_, info = correct(pred, self.index, self.weights, self.fr, self.fc, self.shape, delta, mode)
            borrowed_cells = int((~observed & (count > 0) & np.isfinite(borrowed)).sum())
        else:
            field_ = pred
            borrowed_cells = 0
        field_[self.index < 0] = np.nan  # outside the coarse grid: no estimate (not extrapolated, not flagged)
        if self.residual == "filter":
            soft_bounds(field_, self.lo, self.hi, info)
            if filt_var is not None:
                unc = np.sqrt(unc.astype(np.float64) ** 2 + filt_var).astype(np.float32)
        else:
            clip_preserving_means(field_, self.index, self.weights, self.n, self.lo, self.hi, info)
        # flags
        valid = np.isfinite(field_)
        obs_px = np.zeros((H, W), dtype=bool)
        inside = self.index >= 0
        obs_px[inside] = observed[self.index[inside]]
        flags = np.where(obs_px, FLAG_OBSERVED, FLAG_SEAM).astype(np.uint8)
        flags[lstf] += FLAG_LST_FILLED
        flags[~valid] = FLAG_NODATA
        unc[~valid] = np.nan
        n_est = int(valid.sum())
        n_seam = int((valid & ~obs_px).sum())
        n_lst = int((valid & lstf).sum())
        s = est.summary()
        pct = (lambda a: 100.0 * a / land_n) if land_n else (lambda a: math.nan)
        stats = {
            "date": day.isoformat(),
            "method": est.method,
            "coarse_cells": int((count > 0).sum()),
            "coarse_observed": int(observed.sum()),
            "coarse_seam": int(((count > 0) & ~observed).sum()),
            "seam_cells_with_borrowed_residual": borrowed_cells,
            "land_pixels": land_n,
            "estimated_pct": pct(n_est),
            "seam_filled_pct": pct(n_seam),
            "lst_gapfilled_pct": pct(n_lst),
            "clipped_pixels": info.clipped,
            "max_shift": info.max_shift,
            "anomaly_gain": self.gain,
            "anomaly_gain_static": self.gain_static if self.gain_static is not None else self.gain,
            "targets_out_of_range": info.targets_out_of_range,
            "bandwidth_km": s.get("bandwidth_km", math.nan),
            "sigma_coarse": s.get("sigma_coarse", math.nan),
            "retrieval_error": self.covariance.noise_sd if self.covariance is not None else math.nan,
            "mean_abs_departure": self._departure(field_, data.y, observed),
        }
        return DayResult(day, field_, flags, unc, stats)

    def _departure(self, field_: np.ndarray, y: np.ndarray, observed: np.ndarray) -> float:
        """Mean over observed cells of |1 km cell mean - coarse value| (m3/m3)."""
        if not observed.any():
            return math.nan
        mean, _ = cell_means(field_, self.index, self.weights, self.n)
        d = np.abs(mean - y)[observed & np.isfinite(mean)]
        return float(d.mean()) if d.size else math.nan

    def _apply_filter(self, pred: np.ndarray, mean_pred: np.ndarray, data: CoarseData, count: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, int]:
        """The ``filter`` correction: node values ``v = s + yc - m`` (filtered residual
        signal ``s``, the model's coarse prediction ``yc`` and the cell mean ``m`` of its
        1 km prediction), interpolated bilinearly and added; returns the field, the
        interpolated kriging variance and the number of cells without a retrieval whose
        residual came from neighbouring cells and days."""
        sig, var = self.filtered.get(data.day, (np.zeros(self.n), np.full(self.n, np.nan)))
        yc = self.coarse_pred.get(data.day)
        v = sig.copy()
        if yc is not None:
            adj = yc - mean_pred
            ok = np.isfinite(adj)
            v[ok] += adj[ok]
        field_ = pred.copy()
        fvar = np.full(pred.shape, np.nan, dtype=np.float32)
        H, W = pred.shape
        vv = np.nan_to_num(var, nan=float(np.nanmax(var)) if np.isfinite(var).any() else 0.0)
        for r0, nr in _blocks(self.fine, self.block_pixels):
            blk = field_[r0 : r0 + nr]
            ok = np.isfinite(blk)
            fr = self.fr[r0 : r0 + nr][ok]
            fc = self.fc[r0 : r0 + nr][ok]
            blk[ok] = (blk[ok] + interpolate(v, fr, fc, self.shape)).astype(np.float32)
            fb = fvar[r0 : r0 + nr]
            fb[ok] = interpolate(vv, fr, fc, self.shape).astype(np.float32)
        borrowed = int((~(np.isfinite(data.y) & (count > 0)) & (count > 0)).sum())
        return field_, fvar, borrowed

    def _static_pass(self, fitted: Sequence[dt.date], coarse: dict, w: int, prog: Progress) -> dict[dt.date, dict]:
        """Pass 1 of the static/dynamic split: ``self.static`` = each pixel's within-cell
        anomaly (relative to the smooth large-scale field, averaged over the anomaly window)
        averaged over the run. Returns the day predictions it could keep within
        :data:`KEEP_BYTES` (the rest are predicted again in pass 2)."""
        H, W = self.fine.shape
        acc = np.zeros((H, W))
        cnt = np.zeros((H, W), dtype=np.int32)
        cache: dict[dt.date, dict] = {}
        kept: dict[dt.date, dict] = {}
        budget = KEEP_BYTES // max(1, 8 * H * W)  # predictions (pred + unc, float32) that fit
        for d in fitted:
            near = [o for o in fitted if abs((o - d).days) <= w]
            for o in list(cache):
                if o not in near:
                    if len(kept) < budget:
                        kept[o] = cache[o]
                    del cache[o]
            for o in near:
                if o not in cache:
                    cache[o] = self.predict_day(o, coarse[o][0], prog)
            pd = cache[d]
            _, A = smooth_anomaly(pd["pred"], pd["mean"], [(cache[o]["pred"], cache[o]["mean"]) for o in near if o != d],
                                  self.fr, self.fc, self.shape)
            ok = np.isfinite(A)
            acc[ok] += A[ok]
            cnt[ok] += 1
            prog.advance()
        for o, v in cache.items():
            if len(kept) < budget:
                kept[o] = v
        with np.errstate(invalid="ignore", divide="ignore"):
            self.static = np.where(cnt > 0, acc / cnt, np.nan).astype(np.float32)
        return kept

    def _filter_residuals(self, resid_series: dict[int, np.ndarray], fitted: Sequence[dt.date],
                          check: Callable[[], None]) -> None:
        """Estimate the residuals' space-time covariance and krige their signal for the
        fitted days (:mod:`.stfilter`)."""
        ords = sorted(resid_series)
        stack = np.vstack([resid_series[o] for o in ords])
        self.covariance = cov = estimate_covariance(stack, self.node_xy, np.array(ords), self.spacing, self.noise_sd)
        log.info("Coarse residuals: retrieval error %.3f m3/m3 (%s), signal %.3f m3/m3 correlated over %.0f km and "
                 "%.1f days", cov.noise_sd, "given" if self.noise_sd is not None else "estimated from the data",
                 cov.signal_sd, cov.length_m / 1000.0, cov.time_days)
        self.filtered = krige(resid_series, self.node_xy, [d.toordinal() for d in fitted], cov, self.spacing,
                              grid_shape=self.shape, check=check)

    # -- all stages --------------------------------------------------------------------------
    def run(
        self,
        days: Sequence[dt.date],
        sink: Callable[[DayResult], None],
        progress: ProgressFn | None = None,
        is_cancelled: CancelFn | None = None,
        skipped: dict[dt.date, str] | None = None,
    ) -> list[dt.date]:
        """Process ``days`` (sorted), handing each day's result to ``sink``; returns the days
        done. Days that cannot be fitted are recorded in ``skipped`` with the reason."""
        skipped = {} if skipped is None else skipped
        nb = len(self.blocks)
        prog = Progress(1.0, progress, is_cancelled)
        prog.check()
        pa = prog.sub(0.3, total=max(len(days) * nb, 1))
        coarse: dict[dt.date, tuple[Downscaler, CoarseData, np.ndarray]] = {}
        for d in days:
            coarse[d] = self.aggregate(d, pa)
        y_series = {d.toordinal(): np.where(c[2] > 0, c[1].y, np.nan) for d, c in coarse.items()}
        pb = prog.sub(0.1, total=max(len(days), 1) + 1)
        if self.gain_option == "auto":
            if self.template.scale_gain and self.residual == "filter":
                g = anomaly_gains(self.template, [(c[1], c[2]) for c in coarse.values()],
                                  window=self.anomaly_days, check=prog.check)
                self.gain, self.gain_static = g.dynamic, g.static
                log.info("Within-cell anomaly gains (estimated one scale up from %d coarse cell-days): %.2f for the "
                         "persistent pattern, %.2f for its day-to-day changes (%.2f pooled)", g.pairs, g.static,
                         g.dynamic, g.pooled)
            elif self.template.scale_gain:
                self.gain, pairs = anomaly_gain(self.template, [(c[1], c[2]) for c in coarse.values()],
                                                window=self.anomaly_days, check=prog.check)
                log.info("Within-cell anomaly gain %.2f (estimated one scale up from %d coarse cell-days)",
                         self.gain, pairs)
        else:
            self.gain = float(self.gain_option)
        pb.advance()
        fitted: list[dt.date] = []
        resid_series: dict[int, np.ndarray] = {}
        for d in days:
            est, data, count = coarse[d]
            if not (count > 0).any():  # not the coarse product's fault: say which input is empty
                skipped[d] = f"no 1 km pixel has every predictor ({', '.join(est.feature_names)}): an input is all nodata"
                pb.advance()
                continue
            if not (np.isfinite(data.y) & (count > 0)).any() and self.pool_days <= 0:
                skipped[d] = "no coarse soil moisture over the 1 km grid"
                pb.advance()
                continue
            data.y_filled = fill_coarse(data.y, y_series, data.day, self.seam_days, self.node_xy, count > 0)
            pool = [coarse[o][1] for o in days if o != d and abs((o - d).days) <= self.pool_days]
            try:
                est.fit(data, pool)
            except ValueError as exc:
                skipped[d] = f"the model cannot be fitted: {exc}"
                pb.advance()
                continue
            yc = est.predict_coarse(data)
            self.coarse_pred[data.day] = yc
            resid_series[data.day] = np.where(np.isfinite(data.y) & (count > 0), data.y - yc, np.nan)
            fitted.append(d)
            pb.advance()
        for d, why in skipped.items():
            if d in coarse:
                log.warning("%s skipped: %s", d, why)
        if self.residual == "filter" and fitted:
            self._filter_residuals(resid_series, fitted, prog.check)
        w = self.anomaly_days if self.template.scale_gain else 0
        kept: dict[dt.date, dict] = {}
        split = self.gain_static is not None and self.residual == "filter"
        if split:  # pass 1: each pixel's within-cell anomaly averaged over the run
            pp = prog.sub(0.25, total=max(len(fitted) * (nb + 1), 1))
            kept = self._static_pass(fitted, coarse, w, pp)
        pc = prog.sub(0.6 if not split else 0.35, total=max(len(fitted) * (nb + 1), 1))
        out_of_range = clipped_px = valid_px = 0
        cache: dict[dt.date, dict] = {}  # predictions of the days in the anomaly window
        for d in fitted:
            near = [o for o in fitted if abs((o - d).days) <= w]
            for o in list(cache):
                if o not in near:
                    del cache[o]
            for o in near:
                if o not in cache:
                    cache[o] = kept.pop(o, None) or self.predict_day(o, coarse[o][0], pc)
            est, data, count = coarse[d]
            others = {k: v for k, v in resid_series.items() if k != data.day}
            res = self.apply(d, est, data, count, others, predicted=cache[d],
                             window=[cache[o] for o in near if o != d])
            out_of_range += res.stats["targets_out_of_range"]
            clipped_px += res.stats["clipped_pixels"]
            valid_px += int(np.isfinite(res.ssm).sum())
            sink(res)
            pc.advance()
        if valid_px and clipped_px > CLIPPED_WARN * valid_px:
            log.warning("%.2f %% of the pixel-days (%d) were outside %.3f-%.3f m3/m3 and were %s: check the inputs' "
                        "units and the MIN_SSM / MAX_SSM range", 100.0 * clipped_px / valid_px, clipped_px, self.lo,
                        self.hi, "compressed to the bounds" if self.residual == "filter" else "clipped")
        if out_of_range:
            log.warning("%d coarse cell-day(s) had soil moisture outside %.3f-%.3f m3/m3: their 1 km pixels were "
                        "clipped, so their means sit at the bound", out_of_range, self.lo, self.hi)
        prog.finish()
        return fitted


# ---------------------------------------------------------------------------------------
# building a run from folders or arrays
# ---------------------------------------------------------------------------------------


def _crop_coarse(coarse_full: Grid, fine: Grid, name: str) -> Grid:
    try:
        return coarse_full.covering(fine, margin=0)
    except GridError as exc:
        raise GridError(f"{name}: the coarse soil moisture grid does not cover the 1 km grid: {exc}") from exc


def build_membership(fine: Grid, coarse_full: Grid, name: str = "coarse soil moisture") -> Membership:
    """Membership of the 1 km grid in the coarse grid cropped to its footprint."""
    crop = _crop_coarse(coarse_full, fine, name)
    try:
        m = Membership.build(fine, crop)
    except GridError as exc:
        raise GridError(f"{name}: {exc}") from exc
    inside = float((m.index >= 0).mean())
    if inside < 0.99:
        log.warning("%s: only %.0f %% of the 1 km grid lies inside the coarse grid", name, 100 * inside)
    return m


def downscale_arrays(
    coarse_ssm: dict[dt.date, np.ndarray] | np.ndarray,
    predictors: dict[str, object],
    fine: Grid,
    coarse: Grid,
    method: str | Downscaler = "gwr",
    *,
    lst_flags: object | None = None,
    day: dt.date | None = None,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
    **options,
) -> dict[dt.date, DayResult]:
    """Downscale in-memory arrays (tests, notebooks).

    ``coarse_ssm`` maps dates to arrays of ``coarse``'s shape (or one array, for ``day``,
    default 2000-01-01); ``coarse`` must be the coarse grid cropped to ``fine`` (see
    :func:`build_membership`) or will be cropped. ``predictors`` maps raw names to 1 km
    arrays (static) or date -> array mappings. ``options`` go to :func:`make_downscaler`
    and :class:`Engine`. Returns date -> :class:`DayResult`.
    """
    if isinstance(coarse_ssm, np.ndarray):
        coarse_ssm = {day or dt.date(2000, 1, 1): coarse_ssm}
    m = build_membership(fine, coarse)
    if m.coarse.shape != next(iter(coarse_ssm.values())).shape:
        win = coarse.window_of(m.coarse)
        r0, c0, nr, nc = win
        coarse_ssm = {d: np.asarray(a)[r0 : r0 + nr, c0 : c0 + nc] for d, a in coarse_ssm.items()}
    engine_keys = ("pool_days", "seam_days", "ssm_range", "residual", "min_fit_coverage", "block_pixels", "anomaly_gain",
                   "anomaly_days", "noise_sd")
    eng_opts = {k: options.pop(k) for k in engine_keys if k in options}
    names = tuple(p for p in PREDICTOR_ORDER if p in predictors)
    est = method if isinstance(method, Downscaler) else make_downscaler(method, names, **options)
    fine_src = ArrayPredictors(fine, predictors, lst_flags)
    coarse_src = ArrayCoarse(coarse_ssm)
    days, skipped = common_days(coarse_src.dates, fine_src, None, None)
    eng = Engine(est, fine_src, coarse_src, m, **eng_opts)
    out: dict[dt.date, DayResult] = {}
    eng.run(days, lambda r: out.__setitem__(r.day, r), progress, is_cancelled, skipped)
    return out


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:  # pragma: no cover
        return False


def downscale_series(
    ssm_dir: str | Path,
    lst_dir: str | Path,
    ndvi: str | Path,
    albedo: str | Path,
    out_ssm: str | Path,
    out_flags: str | Path,
    out_uncertainty: str | Path | None = None,
    *,
    dem: str | Path | None = None,
    lst_flags: str | Path | None = None,
    lst_diff: str | Path | None = None,
    reference: str | Path | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    method: str = "gwr",
    kernel: str = "gaussian",
    bandwidth_km: float | None = None,
    pool_days: int = 0,
    seam_days: int = 7,
    n_trees: int = 100,
    seed: int = 0,
    n_jobs: int = 1,
    residual: str | None = None,
    anomaly_gain: float | str = "auto",
    anomaly_days: int = 1,
    noise_sd: float | None = None,
    ssm_range: tuple[float, float] = (0.01, 0.6),
    ndvi_max_age: int = 16,
    albedo_max_age: int = 8,
    coverage_csv: str | Path | None = None,
    block_pixels: int = 1_000_000,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
    ssm_percent: bool = False,
) -> DownscaleSummary:
    """Downscale a folder of coarse SSM to 1 km daily SSM, flags and uncertainty.

    Inputs: ``ssm_dir`` coarse SSM (m3/m3, any grid and CRS), ``lst_dir`` all-weather
    LST (K; its grid is the 1 km target unless ``reference`` is given), ``ndvi`` and
    ``albedo`` folders or single rasters (composites serve ``*_max_age`` days after their
    date), optional ``dem`` (m), ``lst_flags`` (0 clear, 1 gap-filled) and ``lst_diff``
    (day-night LST difference, K). Writes ``<out>/ssm_YYYY-MM-DD.tif`` (m3/m3),
    ``ssm_flags_...`` (uint8, DESIGN.md 3) and ``ssm_uncertainty_...`` (m3/m3) per day,
    and the coverage table CSV. Options: see :func:`make_downscaler` and :class:`Engine`
    (``bandwidth_km`` 0/None = AICc search). Raises :class:`SsmError` subclasses naming the
    input on bad input, before anything is written: argument types and values, outputs
    that would overwrite an input, units and undeclared fill on the first days
    (``ssm_percent=True`` reads a coarse SSM in percent as m3/m3), see :mod:`..preflight`.
    """
    start, end = check_downscale_args(locals())
    ssm_dir, lst_dir = Path(ssm_dir), Path(lst_dir)
    out_ssm, out_flags = Path(out_ssm), Path(out_flags)
    out_unc = Path(out_uncertainty) if out_uncertainty else None
    if method not in METHODS:
        raise SsmError(f"Unknown downscaling method {method!r}; choose {', '.join(METHODS)}")
    ssm_series = DailySeries.from_folder(ssm_dir)
    layers: dict[str, LayerSource] = {
        "lst": LayerSource.open(lst_dir),
        "ndvi": LayerSource.open(ndvi, max_age_days=ndvi_max_age),
        "albedo": LayerSource.open(albedo, max_age_days=albedo_max_age),
    }
    if dem:
        layers["dem"] = LayerSource.open(dem)
    if lst_diff:
        layers["lst_diff"] = LayerSource.open(lst_diff)
    flags_src = LayerSource.open(lst_flags) if lst_flags else None
    inputs = [ssm_dir, *(v.path for v in layers.values())] + ([flags_src.path] if flags_src else [])
    outs = [("SSM", out_ssm), ("flags", out_flags)] + ([("uncertainty", out_unc)] if out_unc else [])
    for label, o in outs:
        for i in inputs:
            if _same_folder(o, i):
                raise SsmError(f"{o}: the {label} output folder is an input ({i}); choose another folder")
    for (la, a), (lb, b) in [(x, y) for k, x in enumerate(outs) for y in outs[k + 1 :]]:
        if _same_folder(a, b):
            raise SsmError(f"{a}: the {la} and {lb} outputs need different folders")
    try:
        fine = Grid.from_raster(reference) if reference else layers["lst"].grid()
    except GridError as exc:
        raise GridError(f"{reference or lst_dir}: cannot use it as the 1 km grid: {exc}") from exc
    coarse_full = coarse_grid_of(ssm_series)
    for k, v in layers.items():
        check_covers(k, v.path, v.grid(), fine)
    if flags_src is not None:
        check_covers("lst_flags", flags_src.path, flags_src.grid(), fine)
    check_covers("ssm", ssm_dir, coarse_full, fine)
    fine_src = FolderPredictors(fine, layers, flags_src)
    describe = {"ssm": str(ssm_dir)}
    days, skipped = common_days(ssm_series.dates, fine_src, start, end, describe)
    for d, why in skipped.items():
        log.warning("%s skipped: %s", d, why)
    downscale_preflight(ssm_series=ssm_series, layers=layers, flags_src=flags_src, reference=reference,
                        out_ssm=out_ssm, out_flags=out_flags, out_unc=out_unc, coverage_csv=coverage_csv, days=days,
                        method=method, ssm_percent=ssm_percent)
    membership = build_membership(fine, coarse_full, str(ssm_dir))
    coarse_src = FolderCoarse(ssm_series, membership.coarse)
    if ssm_percent:
        coarse_src = PercentCoarse(coarse_src)
    names = tuple(layers)
    est = make_downscaler(
        method, names, kernel=kernel, bandwidth=(bandwidth_km * 1000.0 if bandwidth_km else None),
        n_estimators=n_trees, random_state=seed, n_jobs=n_jobs,
    )
    missing = [p for p in est.required if p not in names]
    if missing:
        raise SsmError(f"The {method} method needs {', '.join(missing)}")
    engine = Engine(est, fine_src, coarse_src, membership, pool_days=pool_days, seam_days=seam_days,
                    ssm_range=ssm_range, residual=residual, block_pixels=block_pixels, anomaly_gain=anomaly_gain,
                    anomaly_days=anomaly_days, noise_sd=noise_sd)
    summary = DownscaleSummary(method=method, skipped=skipped, fine=fine, coarse=membership.coarse)
    if out_unc is not None and not est.has_uncertainty:
        log.warning("The %s method has no uncertainty estimate: the uncertainty rasters hold no data", method)

    def sink(res: DayResult) -> None:
        outputs = [(out_ssm, PREFIX_SSM, res.ssm, "float32", "Soil moisture (m3/m3)", "ssm"),
                   (out_flags, PREFIX_FLAGS, res.flags, "uint8", FLAG_LEGEND, "flags")]
        if out_unc is not None:
            outputs.append((out_unc, PREFIX_UNC, res.uncertainty, "float32",
                            f"Soil moisture uncertainty (m3/m3, {_unc_label(method)})", "uncertainty"))
        for folder, prefix, arr, dtype, desc, key in outputs:
            path = folder / day_filename(prefix, res.day)
            with RasterWriter(path, fine, dtype, date=res.day, description=desc,
                              metadata={"METHOD": method, "UNITS": "m3/m3" if key != "flags" else "flag"}) as w:
                for r0, nr in _blocks(fine, block_pixels):
                    w.write(arr[r0 : r0 + nr], r0)
            summary.files[key].append(path)
        summary.coverage.append(res.stats)
        summary.days.append(res.day)

    engine.run(days, sink, progress, is_cancelled, skipped)
    if coverage_csv and summary.coverage:  # only after a complete run
        summary.coverage_csv = write_coverage(coverage_csv, summary.coverage)
    if not summary.days:
        raise SeriesError(f"{ssm_dir}: no day could be downscaled ({'; '.join(f'{d}: {w}' for d, w in list(skipped.items())[:5])})")
    n_skip = len(summary.skipped)
    log.info("Downscaled %d day(s) with %s%s; mean coverage of land pixels %.2f %%", len(summary.days), method,
             f", {n_skip} day(s) skipped" if n_skip else "", summary.mean_estimated_pct)
    return summary


def _unc_label(method: str) -> str:
    return {"gwr": "GWR prediction standard error", "forest": "spread of the forest's trees"}.get(method, "not available")


def write_coverage(path: str | Path, rows: list[dict]) -> Path:
    """Write the coverage table (CSV, one row per day) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COVERAGE_FIELDS), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    os.replace(tmp, path)
    return path
