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

How a run is organised (:meth:`Engine.run`): each stage is a map over chunks of
consecutive days (``CHUNK_DAYS``) run by an executor (:mod:`..runner`: serial, threads of
this process, local processes or Dask workers); between the stages this process makes the
run-wide reductions in day order - the anomaly gains from the days' anomaly pairs, the
residual covariance, the sum of the days' persistent anomalies - so the bytes written do
not depend on the executor, the number of workers or the chunk size. The run-wide
statistics use at most ``stat_days`` days (:class:`.options.DownscaleOptions`): a first
pass aggregates and fits that sample (and the days of its anomaly windows) and makes
them. The last pass streams the run in blocks of days (:func:`stream_block_days`): it
fits the days a block reaches, kriges the block's residuals, corrects and writes its
days, and drops the state of the days no later block reads (:class:`Reach`). A day's
state (its coarse data, fitted estimator, residuals and kriged residual) goes to a
scratch folder (:class:`DayStore`) and a task reads the days of its window back, so
neither memory nor the scratch folder grows with the number of days beyond the sample's
fits. Workers other than threads rebuild the Engine from the run's inputs and options
(:class:`RunSpec`), once per run.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import datetime as dt
import logging
import math
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..argcheck import check_downscale_args
from ..blas import one_blas_thread
from ..errors import GridError, SeriesError, SsmError
from ..grid import Grid
from ..membership import Membership
from ..memory import keep_freed_memory, trim_freed, tune_huge_pages
from ..preflight import PercentCoarse, downscale_preflight
from ..progress import CancelFn, Progress, ProgressFn
from ..runner import Executor, SerialExecutor, ThreadExecutor, worker_numba_threads
from ..series import DailySeries, LayerSource, RasterWriter, day_filename
from .base import PREDICTOR_ORDER, CoarseData, Downscaler, FineBlock
from .daypass import (  # noqa: F401 - the flag values are part of this module's interface
    FLAG_BOTH,
    FLAG_LST_FILLED,
    FLAG_OBSERVED,
    FLAG_SEAM,
    FiniteMean,
    add_variance,
    bound_counts,
    flag_pixels,
)
from .daystore import DayStore
from .interp import add_interpolated, node_spacing
from .methods import METHODS, make_downscaler
from .options import RESIDUAL_ALIASES, RESIDUAL_MODES, DownscaleOptions, options_from
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
from .residual import CorrectionInfo, cell_means, cell_sums, clip_preserving_means, correct
from .scale import (
    _anomaly_pairs,
    _pooled_slope,
    combine_anomalies,
    combine_anomalies_smooth,
    gains_from_pairs,
    smooth_anomaly,
)
from .seams import borrow_in_time, fill_coarse
from .stfilter import Covariance, estimate_covariance, krige, krige_window

log = logging.getLogger(__name__)

FLAG_LEGEND = (
    "SSM flags: 0 coarse SSM observed; 1 seam-filled (coarse SSM missing that day); "
    "2 LST gap-filled under cloud (coarse observed); 3 seam-filled and LST gap-filled; 255 no estimate"
)
#: residual corrections (:data:`.options.RESIDUAL_MODES`): ``filter`` (default of the
#: model-based methods) treats the coarse value as a noisy observation and spreads its
#: space-time filtered residual smoothly; ``coherent`` makes every observed cell's 1 km mean
#: equal its coarse value exactly (interpolated residual, then a constant shift per cell);
#: ``smooth`` is exact and smooth across cell edges; ``cell`` a constant per cell; ``none``
#: the model alone
#: width (m3/m3) of the soft margin inside MIN_SSM..MAX_SSM in the ``filter`` mode
SOFT_MARGIN = 0.02
#: scratch disk (bytes) for the day predictions of the first pass of the static/dynamic
#: split, read back by the last stage instead of predicting the day again (beyond it, days
#: are predicted again); nothing is kept in memory, whatever the run's length
KEEP_BYTES = 4 * 1024**3
#: days per task of a stage (results do not depend on it)
CHUNK_DAYS = 8
#: memory a day of the run holds while it is processed, bytes per 1 km pixel (a
#: China-sized day of 20 M px: about 1 GB more when a second day runs beside it in threads)
DAY_BYTES_PER_PIXEL = 48
#: memory the days running beside the first in this process's threads may add; beyond
#: it the days run one after another (each day's stages use every core already)
THREAD_EXTRA_BYTES = 512 * 1024**2
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
    f32 = np.float32
    if x.dtype == np.float32 and x.flags.c_contiguous:  # one compiled pass decides; most days touch no bound
        beyond, n_low, n_high = bound_counts(x.reshape(-1), f32(lo), f32(hi), f32(lo + m), f32(hi - m))
    else:  # numpy's comparisons on the array's own dtype
        beyond, n_low, n_high = bound_counts.numpy(x, lo, hi, lo + m, hi - m)
    if info is not None:
        info.clipped += beyond
    if n_low:
        low = np.isfinite(x) & (x < lo + m)
        x[low] = (lo + m * np.exp((x[low].astype(np.float64) - lo - m) / m)).astype(np.float32)
    if n_high:
        high = np.isfinite(x) & (x > hi - m)
        x[high] = (hi - m * np.exp((hi - m - x[high].astype(np.float64)) / m)).astype(np.float32)
    return x


@dataclass
class RunState:
    """The run-wide results a day's last stages need: the anomaly gains, the residual
    covariance and the static anomaly (saved on the scratch folder, ``static_file``)."""

    gain: float = 1.0
    gain_static: float | None = None
    covariance: Covariance | None = None
    static_file: str | None = None


def sample_days(days: Sequence[dt.date], cap: int, block: int = CHUNK_DAYS) -> list[dt.date]:
    """At most ``cap`` of ``days`` (sorted) for the run-wide statistics: all of them when
    there are no more, else blocks of ``block`` consecutive run days spread evenly over the
    run (consecutive days keep the one- and two-day lags the covariance needs)."""
    days = list(days)
    if len(days) <= cap:
        return days
    block = max(1, min(block, cap))
    nb = max(1, cap // block)
    starts = np.linspace(0, len(days) - block, nb).round().astype(int)
    picked: list[dt.date] = []
    for s in starts:
        for d in days[s : s + block]:
            if not picked or d > picked[-1]:
                picked.append(d)
    return picked


def chunks(days: Sequence[dt.date], size: int, workers: int = 1) -> list[list[dt.date]]:
    """``days`` cut into consecutive runs of ``size`` (the tasks of a stage), shorter when
    that gives each of ``workers`` a task (10 days on 2 workers: 5 + 5, not 8 + 2). The
    results do not depend on the cut."""
    days = list(days)
    size = max(1, min(size, -(-len(days) // max(1, workers))))
    return [days[i : i + size] for i in range(0, len(days), size)]


class Engine:
    """Runs the stages over given days for one estimator (see the module docstring).

    The per-day work is in methods that read only the Engine's grid set-up and the
    :class:`RunState` (so workers - threads, processes, Dask - can run them); :meth:`run`
    maps them over chunks of days with an executor (:mod:`..runner`) and makes every
    reduction in day order in this process."""

    def __init__(
        self,
        template: Downscaler,
        fine_source: FolderPredictors | ArrayPredictors,
        coarse_source: FolderCoarse | ArrayCoarse,
        membership: Membership,
        options: DownscaleOptions | None = None,
    ):
        options = options if options is not None else DownscaleOptions()
        self.options = options
        self.template = template
        self.fine_source = fine_source
        self.coarse_source = coarse_source
        self.m = membership
        self.fine = membership.fine
        self.coarse = membership.coarse
        self.pool_days = options.pool_days
        self.seam_days = options.seam_days
        self.lo, self.hi = options.ssm_range
        self.residual = options.residual or template.residual
        self.residual = RESIDUAL_ALIASES.get(self.residual, self.residual)
        if self.residual not in RESIDUAL_MODES:
            raise SsmError(f"Unknown residual correction {self.residual!r}; choose {', '.join(RESIDUAL_MODES)}")
        self.noise_sd = options.noise_sd
        self.min_fit_coverage = options.min_fit_coverage
        self.gain_option = options.anomaly_gain
        self.anomaly_days = options.anomaly_days
        self.state = RunState()
        self._static_file: str | None = None
        self.static: np.ndarray | None = None
        self._lock = threading.Lock()
        block_pixels = options.block_pixels
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

    # -- run-wide state ----------------------------------------------------------------------
    @property
    def gain(self) -> float:
        return self.state.gain

    @property
    def gain_static(self) -> float | None:
        return self.state.gain_static

    @property
    def covariance(self) -> Covariance | None:
        return self.state.covariance

    def use_state(self, state: RunState) -> None:
        """Take the run-wide results (loads the static anomaly once per worker)."""
        with self._lock:
            self.state = state
            if state.static_file != self._static_file:
                self.static = None if state.static_file is None else np.load(state.static_file)
                self._static_file = state.static_file

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _land(raw: dict[str, np.ndarray]) -> np.ndarray:
        """Land pixels: where any surface predictor (LST, NDVI, albedo, ...) is valid; the
        DEM is not used, as it is valid over lakes too."""
        layers = [np.isfinite(v) for k, v in raw.items() if k != "dem"] or [np.isfinite(v) for v in raw.values()]
        return np.logical_or.reduce(layers)

    # -- stage A -----------------------------------------------------------------------------
    def aggregate(self, day: dt.date, prog: Progress | None = None) -> tuple[Downscaler, CoarseData, np.ndarray]:
        prog = prog or Progress(len(self.blocks))
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
            w = None if self.weights is None else np.broadcast_to(self.weights, self.fine.shape)[r0 : r0 + nr]
            vp, wp, cp = cell_sums(X, self.index[r0 : r0 + nr], self.n, mask=self._land(raw), weights=w)
            wsum += wp
            count += cp
            vsum += vp
            prog.advance()
        with np.errstate(invalid="ignore", divide="ignore"):
            Xc = vsum / wsum[:, None]
        Xc[count == 0] = np.nan
        frac = np.where(self.members > 0, count / np.maximum(self.members, 1), 0.0)
        usable = self.cover * frac >= self.min_fit_coverage
        y = np.asarray(self.coarse_source.read(day), dtype=np.float64).ravel()
        data = CoarseData(y, Xc, usable, self.node_xy, self.shape, est.feature_names, day=day.toordinal())
        return est, data, count

    # -- stage B (per day) ------------------------------------------------------------------------
    def fit_day(self, day: dt.date, agg: tuple[Downscaler, CoarseData, np.ndarray],
                y_series: dict[int, np.ndarray], pool: Sequence[CoarseData]) -> tuple[Downscaler, np.ndarray | None, str]:
        """Fit one day: ``y_series`` the observed coarse SSM of the days within
        ``seam_days`` (ordinal -> (n,)), ``pool`` the coarse data of the days within
        ``pool_days``. Returns the fitted estimator, the coarse prediction and '' - or the
        reason the day is skipped (and None)."""
        est, data, count = agg
        if not (count > 0).any():  # not the coarse product's fault: say which input is empty
            return est, None, f"no 1 km pixel has every predictor ({', '.join(est.feature_names)}): an input is all nodata"
        if not (np.isfinite(data.y) & (count > 0)).any() and self.pool_days <= 0:
            return est, None, "no coarse soil moisture over the 1 km grid"
        data.y_filled = fill_coarse(data.y, y_series, data.day, self.seam_days, self.node_xy, count > 0)
        try:
            est.fit(data, pool)
        except ValueError as exc:
            return est, None, f"the model cannot be fitted: {exc}"
        return est, est.predict_coarse(data), ""

    # -- stage C -----------------------------------------------------------------------------
    def predict_day(self, day: dt.date, est: Downscaler, prog: Progress | None = None, slim: bool = False) -> dict:
        """The model at 1 km for one day (no correction): ``pred``, ``unc`` float32 full
        arrays, ``lstf`` (LST gap-filled pixels), the number of land pixels and the cell
        means ``mean``. ``slim``: only ``pred`` and ``mean`` (:data:`SLIM_KEYS`; the same
        values), without the uncertainty's work."""
        prog = prog or Progress(len(self.blocks))
        H, W = self.fine.shape
        # every block writes whole rows: when the blocks tile the grid nothing needs a fill first
        tiled = sum(nr for _, nr in self.blocks) == H
        alloc = (lambda: np.empty((H, W), dtype=np.float32)) if tiled else (lambda: np.full((H, W), np.nan, np.float32))
        pred = alloc()
        unc = alloc() if not slim else None
        lstf = np.zeros((H, W), dtype=bool) if not slim else None
        land_n = 0
        for r0, nr in self.blocks:
            raw = self.fine_source.read(day, r0, nr)
            X = est.features(raw)
            land = self._land(raw).ravel()
            land_n += int(land.sum())
            if est.predicts_missing:  # every row at once: NaN out where a predictor is missing
                p, u = est.predict(FineBlock(X, self.fr[r0 : r0 + nr].ravel(), self.fc[r0 : r0 + nr].ravel(),
                                             self.index[r0 : r0 + nr].ravel(), uncertainty=not slim))
                p[~land] = np.nan
                pred[r0 : r0 + nr] = p.reshape(nr, W)
                if not slim:
                    u[~land] = np.nan
                    unc[r0 : r0 + nr] = u.reshape(nr, W)
            else:
                ok = land & np.isfinite(X).all(axis=1)
                fr = self.fr[r0 : r0 + nr].ravel()[ok]
                fc = self.fc[r0 : r0 + nr].ravel()[ok]
                cell = self.index[r0 : r0 + nr].ravel()[ok]
                p, u = est.predict(FineBlock(X[ok], fr, fc, cell, uncertainty=not slim))
                bp = np.full(ok.size, np.nan, dtype=np.float32)
                bp[ok] = p
                pred[r0 : r0 + nr] = bp.reshape(nr, W)
                if not slim:
                    bu = np.full(ok.size, np.nan, dtype=np.float32)
                    bu[ok] = u
                    unc[r0 : r0 + nr] = bu.reshape(nr, W)
            if not slim:
                fl = self.fine_source.lst_flags(day, r0, nr)
                if fl is not None:
                    lstf[r0 : r0 + nr] = np.asarray(fl) == 1
            prog.advance()
        mean, _ = cell_means(pred, self.index, self.weights, self.n)
        if slim:
            return {"pred": pred, "mean": mean}
        return {"pred": pred, "unc": unc, "lstf": lstf, "land_n": land_n, "mean": mean}

    def apply(self, day: dt.date, est: Downscaler, data: CoarseData, count: np.ndarray,
              resid_series: dict[int, np.ndarray], prog: Progress | None = None,
              predicted: dict | None = None, window: Sequence[dict] = (),
              filtered: tuple[np.ndarray, np.ndarray] | None = None, coarse_pred: np.ndarray | None = None
              ) -> DayResult:
        """Stage C for one day: ``predicted`` (from :meth:`predict_day`, computed when None)
        and the predictions of neighbouring days whose within-cell anomalies are averaged
        with today's (``window``); ``filtered`` the day's kriged residual signal and
        variance and ``coarse_pred`` the model's coarse prediction (``filter`` mode)."""
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
            field_, filt_var, borrowed_cells = self._apply_filter(pred, mean_now, data, count, filtered, coarse_pred)
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
                out = np.empty_like(unc)
                add_variance(unc.reshape(-1), filt_var.reshape(-1), out.reshape(-1))
                unc = out
        else:
            clip_preserving_means(field_, self.index, self.weights, self.n, self.lo, self.hi, info)
        # flags (and no uncertainty where there is no estimate)
        flags = np.empty((H, W), dtype=np.uint8)
        counts = flag_pixels(field_.reshape(-1), self.index.reshape(-1), observed.astype(np.bool_),
                             lstf.reshape(-1), unc.reshape(-1), flags.reshape(-1))
        n_est, n_seam, n_lst = (int(c) for c in counts)
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

    def _apply_filter(self, pred: np.ndarray, mean_pred: np.ndarray, data: CoarseData, count: np.ndarray,
                      filtered: tuple[np.ndarray, np.ndarray] | None, yc: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray, int]:
        """The ``filter`` correction: node values ``v = s + yc - m`` (filtered residual
        signal ``s``, the model's coarse prediction ``yc`` and the cell mean ``m`` of its
        1 km prediction), interpolated bilinearly and added to ``pred`` in place; returns
        that field, the interpolated kriging variance and the number of cells without a
        retrieval whose residual came from neighbouring cells and days."""
        sig, var = filtered if filtered is not None else (np.zeros(self.n), np.full(self.n, np.nan))
        v = sig.copy()
        if yc is not None:
            adj = yc - mean_pred
            ok = np.isfinite(adj)
            v[ok] += adj[ok]
        field_ = pred  # corrected in place: the caller's own copy of the day's prediction
        vv = np.nan_to_num(var, nan=float(np.nanmax(var)) if np.isfinite(var).any() else 0.0)
        fvar = add_interpolated(field_, v, vv, self.fr, self.fc, self.shape)
        borrowed = int((~(np.isfinite(data.y) & (count > 0)) & (count > 0)).sum())
        return field_, fvar, borrowed

    # -- all stages --------------------------------------------------------------------------
    @keep_freed_memory()
    @one_blas_thread()
    def run(
        self,
        days: Sequence[dt.date],
        sink: Callable[[DayResult], None] | None = None,
        progress: ProgressFn | None = None,
        is_cancelled: CancelFn | None = None,
        skipped: dict[dt.date, str] | None = None,
        *,
        executor: Executor | None = None,
        spec: RunSpec | None = None,
        writer: Callable[[DayResult], dict] | None = None,
        on_written: Callable[[dict], None] | None = None,
        scratch: str | Path | None = None,
        chunk_days: int = CHUNK_DAYS,
    ) -> list[dt.date]:
        """Process ``days`` (sorted): each day's result goes to ``sink`` here, or is
        written in the worker by ``writer`` (picklable; its return value goes to
        ``on_written`` here, in day order). Returns the days done; days that cannot be
        fitted are recorded in ``skipped`` with the reason.

        ``executor`` (default serial) runs the per-day stages over chunks of
        ``chunk_days`` days; workers other than this process's threads rebuild the Engine
        from ``spec``. Per-day state goes to ``scratch`` (default: a temporary folder;
        removed at the end). The reductions between the stages (anomaly gains, residual
        covariance, static anomaly) are made here in day order, so every executor and
        chunk size gives the same bytes."""
        skipped = {} if skipped is None else skipped
        executor = executor or SerialExecutor()
        own_scratch = scratch is None
        folder = Path(tempfile.mkdtemp(prefix="ssm-run-") if own_scratch else scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if spec is None:
            spec = RunSpec(token=uuid.uuid4().hex, inputs=None, options=self.options, template=self.template)
        if not isinstance(executor, (SerialExecutor, ThreadExecutor)) and spec.inputs is None:
            raise SsmError(f"A run on {executor.name} workers needs its inputs (RunSpec.inputs) to rebuild the engine")
        _ENGINES[spec.token] = self
        if is_cancelled is not None:  # tasks in this process check it between days and blocks
            _CANCELS[spec.token] = is_cancelled
        local = isinstance(executor, (SerialExecutor, ThreadExecutor))
        ctx = _Ctx(spec, str(folder), tuple(days), local)
        shared = executor.share(ctx)
        store = DayStore(folder, local)
        try:
            return self._run(list(days), sink, Progress(1.0, progress, is_cancelled), skipped, executor, shared,
                             store, writer, on_written, max(1, int(chunk_days)))
        finally:
            store.close()
            _ENGINES.pop(spec.token, None)
            _CANCELS.pop(spec.token, None)
            self.fine_source.close()  # the decoded inputs of the run
            executor.on_workers(forget_run, spec.token)
            if own_scratch:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                for p in folder.glob("*"):
                    p.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    folder.rmdir()

    def _run(self, days: list[dt.date], sink, prog: Progress, skipped: dict, executor: Executor, ctx,
             store: DayStore, writer, on_written, chunk: int) -> list[dt.date]:
        prog.check()
        ahead = days_in_flight(executor, self.fine.shape)
        if ahead is not None:
            px = self.fine.shape[0] * self.fine.shape[1]
            log.info("Days of %.1f M px run %d at a time in this process (each one more would hold about %.1f GB "
                     "more; each day's stages use every core); give 'processes' or a Dask scheduler address to run "
                     "more in parallel", px / 1e6, ahead, DAY_BYTES_PER_PIXEL * px / 1024**3)
            if ahead == 1:  # in this thread: the run's memory in one malloc arena, not two
                executor, ahead = SerialExecutor(), None
        w = self.anomaly_days if self.template.scale_gain else 0
        filt = self.residual == "filter"
        gains = self.gain_option == "auto" and bool(self.template.scale_gain)
        split = filt and gains
        reach = Reach(fit=max(self.seam_days, self.pool_days), apply=max(w, self.seam_days), krige=0)
        sample = sample_days(days, self.options.stat_days)
        # pass 1, the run-wide statistics from the sample: its days (and, for the static
        # pattern, the days of their anomaly windows) aggregated and fitted
        first = set(sample) if filt else set()
        if split:
            first.update(o for d in sample for o in _near(days, d, w))
        attempted = sorted(first)
        agg_days = sorted(set(sample if gains else ()).union(o for d in attempted for o in _near(days, d, reach.fit)))
        self._map_aggregate(agg_days, executor, ctx, ahead, chunk, prog.sub(0.15, total=max(len(agg_days), 1)))
        held_agg = set(agg_days)
        state = RunState()
        pb = prog.sub(0.05, total=1)
        if self.gain_option == "auto":
            if gains:
                per: dict = {off: {} for off in GAIN_OFFSETS}
                tasks = [(ctx, c) for c in chunks(sample, chunk, executor.workers)]
                for res in executor.map(_task_gain_pairs, tasks, ahead):
                    prog.check()
                    for off, entries in res.items():
                        per[off].update(entries)
                if filt:
                    g = gains_from_pairs(per, self.anomaly_days)
                    state.gain, state.gain_static = g.dynamic, g.static
                    log.info("Within-cell anomaly gains (estimated one scale up from %d coarse cell-days): %.2f for "
                             "the persistent pattern, %.2f for its day-to-day changes (%.2f pooled)", g.pairs, g.static,
                             g.dynamic, g.pooled)
                else:
                    state.gain, pairs = _pooled_slope(per, self.anomaly_days)
                    log.info("Within-cell anomaly gain %.2f (estimated one scale up from %d coarse cell-days)",
                             state.gain, pairs)
                del per
        else:
            state.gain = float(self.gain_option)
        pb.advance()
        fitted: list[dt.date] = []
        stat = set(sample)
        resid_sample: dict[int, np.ndarray] = {}
        self._map_fit(attempted, executor, ctx, ahead, chunk, prog.sub(0.1, total=max(len(attempted), 1)), fitted,
                      skipped, resid_sample if filt else None, stat)
        todo = [d for d in days if d not in first]  # the days pass 2 fits
        held_agg -= self._drop_agg(store, held_agg, todo, reach.fit)
        if filt and fitted:
            ords = sorted(resid_sample)
            stack = np.vstack([resid_sample[o] for o in ords])
            state.covariance = cov = estimate_covariance(stack, self.node_xy, np.array(ords), self.spacing,
                                                         self.noise_sd)
            del stack
            log.info("Coarse residuals: retrieval error %.3f m3/m3 (%s), signal %.3f m3/m3 correlated over %.0f km "
                     "and %.1f days", cov.noise_sd, "given" if self.noise_sd is not None else "estimated from the data",
                     cov.signal_sd, cov.length_m / 1000.0, cov.time_days)
            reach = Reach(reach.fit, reach.apply, krige_window(cov))
        resid_sample = {}
        split = split and state.gain_static is not None
        if split:  # each pixel's within-cell anomaly averaged over the sample, summed in day order
            fitted_set = set(fitted)
            static_days = [d for d in sample if d in fitted_set]
            pp = prog.sub(0.15, total=max(len(static_days), 1))
            H, W = self.fine.shape
            mean = FiniteMean(H * W)
            keep = set(static_days[: KEEP_BYTES // max(1, 9 * H * W)])  # pred + unc (float32), flags
            for res in executor.map(_task_static, [(ctx, c, _around(fitted, c, w), w, keep.intersection(c))
                                                   for c in chunks(static_days, chunk, executor.workers)], ahead):
                for d in res:
                    mean.add(store.pop_array("anom", d))
                    pp.advance()
            static = mean.mean().reshape(H, W)
            del mean
            state.static_file = str(store.folder / "static.npy")
            if store.local:  # every task runs here: this engine holds it, no file
                with self._lock:
                    self.static, self._static_file = static, state.static_file
            else:
                np.save(state.static_file, static)
            del static
        self.use_state(state)
        # pass 2, streamed over the days in blocks: the days a block's last day reaches
        # fitted, the block kriged, predicted at 1 km, corrected, flagged and written; the
        # state of the days no later block reaches dropped (the scratch folder holds a
        # window of days, not the run)
        pc = prog.sub(0.55, total=max(len(days) + 2 * len(todo), 1))
        counts = {"targets_out_of_range": 0, "clipped_pixels": 0, "valid_pixels": 0}
        gone = nxt = bi = 0  # days[:gone] dropped, todo[:nxt] fitted, days[:bi] written
        while bi < len(days):
            block = stream_block_days(executor, chunk)  # per block: a cluster's workers may still be joining
            blk = days[bi : bi + block]
            end = bisect.bisect_right(todo, blk[-1] + dt.timedelta(days=reach.state))
            fit_now, nxt = todo[nxt:end], max(nxt, end)
            need = sorted({o for d in fit_now for o in _near(days, d, reach.fit)} - held_agg)
            self._map_aggregate(need, executor, ctx, ahead, chunk, pc)
            held_agg.update(need)
            self._map_fit(fit_now, executor, ctx, ahead, chunk, pc, fitted, skipped, None, ())
            held_agg -= self._drop_agg(store, held_agg, todo[nxt:], reach.fit)
            fitted_set = set(fitted)
            ours = [d for d in blk if d in fitted_set]
            if filt and ours and state.covariance is not None:
                for _ in executor.map(_task_krige, [(ctx, c, _around(fitted, c, reach.krige), state.covariance)
                                                    for c in chunks(ours, chunk, executor.workers)], ahead):
                    prog.check()
            for res in executor.map(_task_apply, [(ctx, c, _around(fitted, c, reach.apply), w, state, writer)
                                                  for c in chunks(ours, chunk, executor.workers)], ahead):
                for item, st in res:
                    for k in counts:
                        counts[k] += st[k]
                    if writer is None:
                        if sink is not None:
                            sink(item)
                    elif on_written is not None:
                        on_written(item)
                    pc.advance()
            bi += len(blk)
            cut = days[bi] - dt.timedelta(days=reach.state) if bi < len(days) else days[0]
            while days[gone] < cut:  # what the next blocks no longer reach
                for kind in ("fit", "res", "filt", "pred"):
                    store.drop(kind, days[gone])
                gone += 1
        out_of_range = counts["targets_out_of_range"]
        clipped_px, valid_px = counts["clipped_pixels"], counts["valid_pixels"]
        if valid_px and clipped_px > CLIPPED_WARN * valid_px:
            log.warning("%.2f %% of the pixel-days (%d) were outside %.3f-%.3f m3/m3 and were %s: check the inputs' "
                        "units and the MIN_SSM / MAX_SSM range", 100.0 * clipped_px / valid_px, clipped_px, self.lo,
                        self.hi, "compressed to the bounds" if filt else "clipped")
        if out_of_range:
            log.warning("%d coarse cell-day(s) had soil moisture outside %.3f-%.3f m3/m3: their 1 km pixels were "
                        "clipped, so their means sit at the bound", out_of_range, self.lo, self.hi)
        prog.finish()
        return fitted

    def _map_aggregate(self, days: list[dt.date], executor: Executor, ctx, ahead: int | None, chunk: int,
                       prog: Progress) -> None:
        """Stage A for ``days``: their coarse data to the store."""
        tasks = [(ctx, c) for c in chunks(days, chunk, executor.workers)]
        for res in executor.map(_task_aggregate, tasks, ahead):
            prog.advance(len(res))

    def _map_fit(self, days: list[dt.date], executor: Executor, ctx, ahead: int | None, chunk: int,
                 prog: Progress, fitted: list[dt.date], skipped: dict, resid: dict | None,
                 keep_resid: Container[dt.date]) -> None:
        """Stage B for ``days``: fitted state to the store, the days inserted in ``fitted``
        (sorted) or recorded in ``skipped``; the residuals of ``keep_resid`` go to
        ``resid`` (ordinal -> (n,)) when given."""
        tasks = [(ctx, c) for c in chunks(days, chunk, executor.workers)]
        for res in executor.map(_task_fit, tasks, ahead):
            for d, why, r in res:
                if why:
                    skipped[d] = why
                    log.warning("%s skipped: %s", d, why)
                else:
                    bisect.insort(fitted, d)
                    if resid is not None and d in keep_resid:
                        resid[d.toordinal()] = r
                prog.advance()

    @staticmethod
    def _drop_agg(store: DayStore, held: set[dt.date], todo: Sequence[dt.date], reach: int) -> set[dt.date]:
        """Drop the coarse data of the ``held`` days that no day still to fit (``todo``,
        sorted) reads (within ``reach`` days); returns them."""
        gone = set()
        for o in held:
            i = bisect.bisect_left(todo, o - dt.timedelta(days=reach))
            if i == len(todo) or todo[i] > o + dt.timedelta(days=reach):
                store.drop("agg", o)
                gone.add(o)
        return gone


# ---------------------------------------------------------------------------------------
# the tasks (module-level, picklable): each gets the run context and a chunk of days
# ---------------------------------------------------------------------------------------

#: anomaly-gain block offsets (as :func:`.scale.anomaly_gains`)
GAIN_OFFSETS = ((0, 0), (1, 1))


@dataclass(frozen=True)
class RunSpec:
    """What a worker needs to rebuild the Engine: ``inputs`` (:class:`FolderInputs` or
    :class:`ArrayInputs`), the options and the unfitted estimator; ``token`` names the
    run (a worker builds its Engine once per run)."""

    token: str
    inputs: FolderInputs | ArrayInputs | None
    options: DownscaleOptions
    template: Downscaler


@dataclass(frozen=True)
class _Ctx:
    spec: RunSpec
    scratch: str
    days: tuple[dt.date, ...]
    #: every task runs in the driver's process (serial or thread executor): the per-day
    #: state may stay in memory (:class:`DayStore`)
    local: bool = False


#: engines of the runs this process works on (token -> Engine); the driver registers its own
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


#: the caller's cancel check of the runs started in this process (token -> callable)
_CANCELS: dict[str, CancelFn] = {}


def _checker(ctx: _Ctx) -> Progress:
    """A progress counter that only checks for cancellation (in the driver's process)."""
    return Progress(1e18, None, _CANCELS.get(ctx.spec.token))


def _engine(ctx: _Ctx) -> Engine:
    worker_numba_threads()  # every task starts here
    spec = ctx.spec
    with _ENGINES_LOCK:
        eng = _ENGINES.get(spec.token)
        if eng is None:
            tune_huge_pages()  # a worker process: once
            fine_src, coarse_src, m = spec.inputs.open(spec.options)
            for k in [k for k in _ENGINES if k != spec.token]:  # one run at a time per worker
                del _ENGINES[k]
            eng = _ENGINES[spec.token] = Engine(spec.template, fine_src, coarse_src, m, spec.options)
    return eng


def forget_run(token: str) -> None:
    """Drop this worker's Engine of a finished run (its grids, kept predictions and
    cached inputs)."""
    with _ENGINES_LOCK:
        eng = _ENGINES.pop(token, None)
    if eng is not None:
        eng.fine_source.close()


def days_in_flight(executor: Executor, shape: tuple[int, int]) -> int | None:
    """How many tasks :meth:`.Executor.map` may have in flight (``None``: the executor's
    default): fewer than its workers when they are threads of this process and the days
    beside the first would add more than :data:`THREAD_EXTRA_BYTES` (a China-sized day:
    one at a time, and then in the calling thread; measured on 10 days, no slower and
    1 GB less than two at a time)."""
    if not isinstance(executor, ThreadExecutor) or executor.workers <= 1:
        return None
    n = 1 + THREAD_EXTRA_BYTES // max(1, DAY_BYTES_PER_PIXEL * int(shape[0]) * int(shape[1]))
    return None if n >= executor.workers else int(n)


@dataclass(frozen=True)
class Reach:
    """How far (days) a day's stages look at other days: its fit at their coarse data
    (seams, pooling), its correction at their fits (anomaly window, seams), its kriging
    at their residuals."""

    fit: int
    apply: int
    krige: int

    @property
    def state(self) -> int:
        """Days on either side of a day whose fitted state its kriging and correction read
        (fitted before it is corrected, kept until then)."""
        return max(self.apply, self.krige)


def stream_block_days(executor: Executor, chunk: int) -> int:
    """Days per block of a run's last pass: four chunks per worker connected now (each
    stage of a block is one map over the executor; a Dask cluster that grows gets larger
    blocks as its workers join), so the scratch folder holds one block of days and the
    days it reaches on either side, whatever the run's length."""
    return max(2, 4 * max(1, int(chunk)) * max(1, int(executor.workers)))


def _around(days: Sequence[dt.date], chunk: Sequence[dt.date], reach: int) -> tuple[dt.date, ...]:
    """The ``days`` within ``reach`` days of a chunk (what its tasks may look at)."""
    i = bisect.bisect_left(days, chunk[0] - dt.timedelta(days=reach))
    j = bisect.bisect_right(days, chunk[-1] + dt.timedelta(days=reach))
    return tuple(days[i:j])


def _near(days: Sequence[dt.date], d: dt.date, w: int) -> list[dt.date]:
    i = bisect.bisect_left(days, d - dt.timedelta(days=w))
    j = bisect.bisect_right(days, d + dt.timedelta(days=w))
    return list(days[i:j])


@one_blas_thread()
@keep_freed_memory()
def _task_aggregate(task: tuple) -> list[dt.date]:
    ctx, days = task
    eng, store = _engine(ctx), DayStore(ctx.scratch, ctx.local)
    for d in days:
        store.put("agg", d, eng.aggregate(d, _checker(ctx)))
        trim_freed()
    return list(days)


@one_blas_thread()
@keep_freed_memory()
def _task_gain_pairs(task: tuple) -> dict:
    ctx, days = task
    eng, store = _engine(ctx), DayStore(ctx.scratch, ctx.local)
    out: dict = {off: {} for off in GAIN_OFFSETS}
    for d in days:
        _, data, count = store.get("agg", d)
        per = _anomaly_pairs(eng.template, [(data, count)], GAIN_OFFSETS, 2, None)
        for off in GAIN_OFFSETS:
            out[off].update(per[off])
    return out


@one_blas_thread()
@keep_freed_memory()
def _task_fit(task: tuple) -> list[tuple[dt.date, str, np.ndarray | None]]:
    ctx, days = task
    eng, store = _engine(ctx), DayStore(ctx.scratch, ctx.local)
    out = []
    cache: dict[dt.date, tuple] = {}
    reach = max(eng.seam_days, eng.pool_days)
    check = _checker(ctx)
    for d in days:
        check.check()
        near = _near(ctx.days, d, reach)
        for o in list(cache):
            if o not in near:
                del cache[o]
        for o in near:
            if o not in cache:
                cache[o] = store.get("agg", o)
        est, data, count = cache[d]
        y_series = {o.toordinal(): np.where(cache[o][2] > 0, cache[o][1].y, np.nan)
                    for o in near if abs((o - d).days) <= eng.seam_days}
        pool = [cache[o][1] for o in near if o != d and abs((o - d).days) <= eng.pool_days]
        est, yc, why = eng.fit_day(d, (est, data, count), y_series, pool)
        if why:
            out.append((d, why, None))
            continue
        resid = np.where(np.isfinite(data.y) & (count > 0), data.y - yc, np.nan)
        store.put("fit", d, (est, data, count, yc))
        store.put("res", d, resid)
        out.append((d, "", resid))
    return out


@one_blas_thread()
@keep_freed_memory()
def _task_krige(task: tuple) -> list[dt.date]:
    ctx, days, fitted, cov = task
    eng, store = _engine(ctx), DayStore(ctx.scratch, ctx.local)
    reach = krige_window(cov)
    src = [o for o in fitted if days[0] - dt.timedelta(days=reach) <= o <= days[-1] + dt.timedelta(days=reach)]
    resid = {o.toordinal(): store.get("res", o) for o in src}
    res = krige(resid, eng.node_xy, [d.toordinal() for d in days], cov, eng.spacing, grid_shape=eng.shape,
                check=_checker(ctx).check)
    for d in days:
        store.put("filt", d, res[d.toordinal()])
    return list(days)


#: what a neighbouring day's prediction is kept with (its anomaly is all that is used)
SLIM_KEYS = ("pred", "mean")


def _predictions(eng: Engine, store: DayStore, cache: dict, near: Sequence[dt.date], fit_cache: dict,
                 check: Progress | None = None, full: Container[dt.date] = (),
                 save: Container[dt.date] = ()) -> None:
    """Fill ``cache`` with the day predictions of ``near`` (dropping the others): those the
    first pass saved on the scratch folder, else predicted (and saved when in ``save``).
    Only the days in ``full`` keep everything :meth:`Engine.predict_day` returns; the others
    keep :data:`SLIM_KEYS` (a China-sized day: 80 of 180 MB)."""
    for o in list(cache):
        if o not in near:
            del cache[o]
    for o in list(fit_cache):
        if o not in near:
            del fit_cache[o]
    for o in near:
        if o not in fit_cache:
            fit_cache[o] = store.get("fit", o)
        if o in cache and (o not in full or len(cache[o]) > len(SLIM_KEYS)):
            continue
        if store.has("pred", o):
            pd = store.get("pred", o)
        else:
            pd = eng.predict_day(o, fit_cache[o][0], check, slim=o not in full and o not in save)
            if o in save:
                store.put("pred", o, pd)
        cache[o] = pd if o in full else {k: pd[k] for k in SLIM_KEYS}
        del pd


@one_blas_thread()
@keep_freed_memory()
def _task_static(task: tuple) -> list[dt.date]:
    """Pass 1 of the static/dynamic split for a chunk of days: each day's within-cell
    anomaly (averaged over the anomaly window) saved for the driver's sum in day order."""
    ctx, days, fitted, w, keep = task
    eng, store = _engine(ctx), DayStore(ctx.scratch, ctx.local)
    cache: dict[dt.date, dict] = {}
    fits: dict[dt.date, tuple] = {}
    for d in days:
        near = _near(fitted, d, w)
        _predictions(eng, store, cache, near, fits, _checker(ctx), save=keep)
        pd = cache[d]
        _, A = smooth_anomaly(pd["pred"], pd["mean"], [(cache[o]["pred"], cache[o]["mean"]) for o in near if o != d],
                              eng.fr, eng.fc, eng.shape, field=False)
        store.put_array("anom", d, A)
        trim_freed()
    return list(days)


@one_blas_thread()
@keep_freed_memory()
def _task_apply(task: tuple) -> list[tuple[object, dict]]:
    """Stage C for a chunk of days: the corrected day, written by ``writer`` in the worker
    (its return value comes back) or returned whole (no writer)."""
    ctx, days, fitted, w, state, writer = task
    eng, store = _engine(ctx), DayStore(ctx.scratch, ctx.local)
    eng.use_state(state)
    cache: dict[dt.date, dict] = {}
    fits: dict[dt.date, tuple] = {}
    out = []
    for i, d in enumerate(days):
        near = _near(fitted, d, w)
        # today whole; a later day of this chunk that only this task predicts stays whole too
        full = {d}.union(o for o in days[i + 1:] if o in near and not store.has("pred", o))
        _predictions(eng, store, cache, near, fits, _checker(ctx), full=full)
        est, data, count, yc = fits[d]
        if eng.residual == "filter":
            filt = store.get("filt", d) if store.has("filt", d) else None
            others: dict[int, np.ndarray] = {}
        else:
            filt = None
            others = {o.toordinal(): store.get("res", o) for o in _near(fitted, d, eng.seam_days) if o != d}
        res = eng.apply(d, est, data, count, others, predicted=cache[d], window=[cache[o] for o in near if o != d],
                        filtered=filt, coarse_pred=yc)
        st = {"targets_out_of_range": res.stats["targets_out_of_range"], "clipped_pixels": res.stats["clipped_pixels"],
              "valid_pixels": int(np.isfinite(res.ssm).sum())}
        out.append((writer(res) if writer is not None else res, st))
        for o in fitted:  # inputs no later day of this chunk reads (their decoded copies)
            if o <= d - dt.timedelta(days=w) and o not in days[days.index(d) + 1:]:
                eng.fine_source.release(o)
        trim_freed()
    return out


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


@dataclass(frozen=True)
class FolderInputs:
    """The input folders of :func:`downscale_series` (picklable: a worker opens them again)."""

    ssm_dir: Path
    lst_dir: Path
    ndvi: Path
    albedo: Path
    dem: Path | None = None
    lst_flags: Path | None = None
    lst_diff: Path | None = None
    reference: Path | None = None

    def layers(self, options: DownscaleOptions) -> tuple[dict[str, LayerSource], LayerSource | None]:
        """The predictor layers (raw name -> source) and the LST flag source."""
        layers: dict[str, LayerSource] = {
            "lst": LayerSource.open(self.lst_dir),
            "ndvi": LayerSource.open(self.ndvi, max_age_days=options.ndvi_max_age),
            "albedo": LayerSource.open(self.albedo, max_age_days=options.albedo_max_age),
        }
        if self.dem:
            layers["dem"] = LayerSource.open(self.dem)
        if self.lst_diff:
            layers["lst_diff"] = LayerSource.open(self.lst_diff)
        return layers, (LayerSource.open(self.lst_flags) if self.lst_flags else None)

    def fine_grid(self, layers: dict[str, LayerSource]) -> Grid:
        try:
            return Grid.from_raster(self.reference) if self.reference else layers["lst"].grid()
        except GridError as exc:
            raise GridError(f"{self.reference or self.lst_dir}: cannot use it as the 1 km grid: {exc}") from exc

    def open(self, options: DownscaleOptions) -> tuple[FolderPredictors, FolderCoarse | PercentCoarse, Membership]:
        """The 1 km and coarse sources and the grid membership (no checks: see
        :func:`downscale_series`)."""
        ssm_series = DailySeries.from_folder(self.ssm_dir)
        layers, flags_src = self.layers(options)
        fine = self.fine_grid(layers)
        membership = build_membership(fine, coarse_grid_of(ssm_series), str(self.ssm_dir))
        coarse_src: FolderCoarse | PercentCoarse = FolderCoarse(ssm_series, membership.coarse)
        if options.ssm_percent:
            coarse_src = PercentCoarse(coarse_src)
        return FolderPredictors(fine, layers, flags_src), coarse_src, membership


@dataclass(frozen=True)
class ArrayInputs:
    """The in-memory inputs of :func:`downscale_arrays` (``coarse`` already cropped)."""

    coarse_ssm: dict
    predictors: dict
    lst_flags: object | None
    fine: Grid
    coarse: Grid

    def open(self, options: DownscaleOptions) -> tuple[ArrayPredictors, ArrayCoarse, Membership]:
        m = build_membership(self.fine, self.coarse)
        return ArrayPredictors(self.fine, self.predictors, self.lst_flags), ArrayCoarse(self.coarse_ssm), m


#: downscale_arrays options that go to the Engine (the rest go to the estimator)
ENGINE_KEYS = ("pool_days", "seam_days", "ssm_range", "residual", "min_fit_coverage", "block_pixels", "anomaly_gain",
               "anomaly_days", "noise_sd", "stat_days")


@keep_freed_memory()
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
    executor: Executor | None = None,
    chunk_days: int = CHUNK_DAYS,
    **options,
) -> dict[dt.date, DayResult]:
    """Downscale in-memory arrays (tests, notebooks).

    ``coarse_ssm`` maps dates to arrays of ``coarse``'s shape (or one array, for ``day``,
    default 2000-01-01); ``coarse`` must be the coarse grid cropped to ``fine`` (see
    :func:`build_membership`) or will be cropped. ``predictors`` maps raw names to 1 km
    arrays (static) or date -> array mappings. ``options``: the Engine's fields of
    :class:`DownscaleOptions` (:data:`ENGINE_KEYS`) and keyword arguments of
    :func:`make_downscaler`. ``executor``: see :meth:`Engine.run`. Returns date ->
    :class:`DayResult`.
    """
    if isinstance(coarse_ssm, np.ndarray):
        coarse_ssm = {day or dt.date(2000, 1, 1): coarse_ssm}
    m = build_membership(fine, coarse)
    if m.coarse.shape != next(iter(coarse_ssm.values())).shape:
        win = coarse.window_of(m.coarse)
        r0, c0, nr, nc = win
        coarse_ssm = {d: np.asarray(a)[r0 : r0 + nr, c0 : c0 + nc] for d, a in coarse_ssm.items()}
    eng_opts = {k: options.pop(k) for k in ENGINE_KEYS if k in options}
    opts = DownscaleOptions(method=method if isinstance(method, str) and method in METHODS else "gwr", **eng_opts)
    names = tuple(p for p in PREDICTOR_ORDER if p in predictors)
    est = method if isinstance(method, Downscaler) else make_downscaler(method, names, **options)
    inputs = ArrayInputs(dict(coarse_ssm), dict(predictors), lst_flags, fine, m.coarse)
    fine_src = ArrayPredictors(fine, predictors, lst_flags)
    coarse_src = ArrayCoarse(coarse_ssm)
    days, skipped = common_days(coarse_src.dates, fine_src, None, None)
    eng = Engine(est, fine_src, coarse_src, m, opts)
    out: dict[dt.date, DayResult] = {}
    spec = RunSpec(uuid.uuid4().hex, inputs, opts, est)
    eng.run(days, lambda r: out.__setitem__(r.day, r), progress, is_cancelled, skipped, executor=executor, spec=spec,
            chunk_days=chunk_days)
    return out


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:  # pragma: no cover
        return False


@dataclass(frozen=True)
class DayWriter:
    """Writes a day's three rasters (picklable: runs in the worker that made the day);
    returns the day's coverage row and the files written."""

    out_ssm: Path
    out_flags: Path
    out_unc: Path | None
    fine: Grid
    method: str
    block_pixels: int

    def __call__(self, res: DayResult) -> dict:
        outputs = [(self.out_ssm, PREFIX_SSM, res.ssm, "float32", "Soil moisture (m3/m3)", "ssm"),
                   (self.out_flags, PREFIX_FLAGS, res.flags, "uint8", FLAG_LEGEND, "flags")]
        if self.out_unc is not None:
            outputs.append((self.out_unc, PREFIX_UNC, res.uncertainty, "float32",
                            f"Soil moisture uncertainty (m3/m3, {_unc_label(self.method)})", "uncertainty"))
        files: dict[str, Path] = {}
        for folder, prefix, arr, dtype, desc, key in outputs:
            path = folder / day_filename(prefix, res.day)
            with RasterWriter(path, self.fine, dtype, date=res.day, description=desc,
                              metadata={"METHOD": self.method, "UNITS": "m3/m3" if key != "flags" else "flag"}) as w:
                for r0, nr in _blocks(self.fine, self.block_pixels):
                    w.write(arr[r0 : r0 + nr], r0)
            files[key] = path
        return {"day": res.day, "stats": res.stats, "files": files}


@keep_freed_memory()
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
    options: DownscaleOptions | None = None,
    coverage_csv: str | Path | None = None,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
    executor: Executor | None = None,
    scratch: str | Path | None = None,
    chunk_days: int = CHUNK_DAYS,
    **option_kwargs,
) -> DownscaleSummary:
    """Downscale a folder of coarse SSM to 1 km daily SSM, flags and uncertainty.

    Inputs: ``ssm_dir`` coarse SSM (m3/m3, any grid and CRS), ``lst_dir`` all-weather
    LST (K; its grid is the 1 km target unless ``reference`` is given), ``ndvi`` and
    ``albedo`` folders or single rasters (composites serve ``*_max_age`` days after their
    date), optional ``dem`` (m), ``lst_flags`` (0 clear, 1 gap-filled) and ``lst_diff``
    (day-night LST difference, K). Writes ``<out>/ssm_YYYY-MM-DD.tif`` (m3/m3),
    ``ssm_flags_...`` (uint8, DESIGN.md 3) and ``ssm_uncertainty_...`` (m3/m3) per day,
    and the coverage table CSV.

    ``options``: a :class:`DownscaleOptions`, or its fields as keyword arguments
    (``method="gwr"``, ``bandwidth_km``, ``pool_days``, ... ; not both). ``executor``
    (:mod:`..runner`; default serial): where the days are processed - every executor
    writes the same bytes. ``scratch``: folder for the per-day state of the run (default:
    a hidden folder in ``out_ssm``, which workers on other machines must see; removed at
    the end). ``chunk_days``: days per task.

    Raises :class:`SsmError` subclasses naming the input on bad input, before anything is
    written: argument types and values, outputs that would overwrite an input, units and
    undeclared fill on the first days (``ssm_percent=True`` reads a coarse SSM in percent
    as m3/m3), see :mod:`..preflight`.
    """
    opt = options_from(options, option_kwargs)
    start, end = check_downscale_args({k: v for k, v in locals().items() if k not in ("options", "option_kwargs")})
    tune_huge_pages()
    ssm_dir, lst_dir = Path(ssm_dir), Path(lst_dir)
    out_ssm, out_flags = Path(out_ssm), Path(out_flags)
    out_unc = Path(out_uncertainty) if out_uncertainty else None
    method = opt.method
    inputs = FolderInputs(ssm_dir, lst_dir, Path(ndvi), Path(albedo), Path(dem) if dem else None,
                          Path(lst_flags) if lst_flags else None, Path(lst_diff) if lst_diff else None,
                          Path(reference) if reference else None)
    ssm_series = DailySeries.from_folder(ssm_dir)
    layers, flags_src = inputs.layers(opt)
    inputs_list = [ssm_dir, *(v.path for v in layers.values())] + ([flags_src.path] if flags_src else [])
    outs = [("SSM", out_ssm), ("flags", out_flags)] + ([("uncertainty", out_unc)] if out_unc else [])
    for label, o in outs:
        for i in inputs_list:
            if _same_folder(o, i):
                raise SsmError(f"{o}: the {label} output folder is an input ({i}); choose another folder")
    for (la, a), (lb, b) in [(x, y) for k, x in enumerate(outs) for y in outs[k + 1 :]]:
        if _same_folder(a, b):
            raise SsmError(f"{a}: the {la} and {lb} outputs need different folders")
    fine = inputs.fine_grid(layers)
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
                        method=method, ssm_percent=opt.ssm_percent)
    membership = build_membership(fine, coarse_full, str(ssm_dir))
    coarse_src: FolderCoarse | PercentCoarse = FolderCoarse(ssm_series, membership.coarse)
    if opt.ssm_percent:
        coarse_src = PercentCoarse(coarse_src)
    names = tuple(layers)
    est = make_downscaler(method, names, **opt.estimator_params())
    missing = [p for p in est.required if p not in names]
    if missing:
        raise SsmError(f"The {method} method needs {', '.join(missing)}")
    engine = Engine(est, fine_src, coarse_src, membership, opt)
    summary = DownscaleSummary(method=method, skipped=skipped, fine=fine, coarse=membership.coarse)
    if out_unc is not None and not est.has_uncertainty:
        log.warning("The %s method has no uncertainty estimate: the uncertainty rasters hold no data", method)
    writer = DayWriter(out_ssm, out_flags, out_unc, fine, method, opt.block_pixels)

    def written(item: dict) -> None:
        for key, path in item["files"].items():
            summary.files[key].append(path)
        summary.coverage.append(item["stats"])
        summary.days.append(item["day"])

    token = uuid.uuid4().hex
    spec = RunSpec(token, inputs, opt, est)
    # the per-day state: where every worker sees it (Dask workers may be on other machines:
    # next to the outputs, unless told), else in the system's temporary folder
    folder = None
    if scratch:
        folder = Path(scratch) / f"ssm-run-{token[:12]}"
    elif executor is not None and executor.name == "dask":
        folder = out_ssm / f".ssm-run-{token[:12]}"
    made_out = not out_ssm.exists()
    try:
        engine.run(days, None, progress, is_cancelled, skipped, executor=executor, spec=spec, writer=writer,
                   on_written=written, scratch=folder, chunk_days=chunk_days)
    finally:
        if made_out and out_ssm.is_dir() and not any(out_ssm.iterdir()):
            out_ssm.rmdir()
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
