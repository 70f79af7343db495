"""Drivers of the LST gap filler: a daily series of files (:func:`gapfill_series`) or an
in-memory stack of days (:func:`gapfill_stack`), both streaming a moving window of days.

Only the days of the window are held (the ``anomaly`` method keeps one float32 array per
window day; ``temporal`` likewise), plus a few full-size static layers.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..argcheck import check_gapfill_args
from ..errors import GridError, RasterReadError, SeriesError, SsmError
from ..grid import Grid, open_raster
from ..memory import keep_freed_memory, trim_freed, tune_huge_pages
from ..preflight import gapfill_preflight
from ..progress import CancelFn, Progress, ProgressFn
from ..runner import Executor
from ..series import DailySeries, LayerSource, as_date, read_raster
from .anomaly import AnomalyFiller
from .background import BackgroundModel, learn_background_model
from .chunked import CHUNK_DAYS, GapfillJob, read_lst, run_chunks
from .footprint import BlockFootprint, Footprint, GridFootprint
from .methods import (
    FLAG_NONE,
    BackgroundFiller,
    DayData,
    Filler,
    SpatialFiller,
    StaticLayers,
    TemporalFiller,
    assemble,
)
from .modis import is_mod11
from .options import GapfillOptions

log = logging.getLogger(__name__)

#: days sampled to learn the background model (effective resolution, lapse rate)
MODEL_SAMPLE_DAYS = 12
#: plausible range of LST medians (K): outside it the input is probably not kelvin
KELVIN_CHECK = (150.0, 400.0)


@dataclass
class GapfillSummary:
    """What a run did. Pixel counts are pixel-days over the processed days."""

    method: str
    days_processed: int = 0
    days_skipped: list[tuple[dt.date, str]] = field(default_factory=list)
    pixels_observed: int = 0
    pixels_filled: int = 0
    pixels_unfilled: int = 0
    lapse_rate: float | None = None
    background_model: BackgroundModel | None = None
    lst_files: list[Path] = field(default_factory=list)
    flag_files: list[Path] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def gap_percent(self) -> float:
        """Share of land pixel-days without a clear-sky observation (%)."""
        land = self.pixels_observed + self.pixels_filled + self.pixels_unfilled
        return 100.0 * (self.pixels_filled + self.pixels_unfilled) / land if land else 0.0

    @property
    def filled_percent(self) -> float:
        """Share of the gaps (land pixel-days without observation) that were filled (%)."""
        gaps = self.pixels_filled + self.pixels_unfilled
        return 100.0 * self.pixels_filled / gaps if gaps else 100.0

    def text(self) -> str:
        s = (
            f"{self.method}: {self.days_processed} day(s) written, {len(self.days_skipped)} skipped; "
            f"gaps {self.gap_percent:.1f} % of land pixel-days, {self.filled_percent:.1f} % of them filled"
        )
        if self.background_model is not None:
            s += f"; {self.background_model.describe()}"
        return s


def make_filler(
    static: StaticLayers,
    options: GapfillOptions,
    model: BackgroundModel | None = None,
    max_memory_mb: float = 2048.0,
) -> Filler:
    """The filler object of ``options.method``."""
    if options.method == "anomaly":
        return AnomalyFiller(static, options, model, max_memory_mb)
    if options.method == "temporal":
        return TemporalFiller(static, options, max_memory_mb)
    if options.method == "spatial":
        return SpatialFiller(static, options)
    return BackgroundFiller(static, options, model)


def run_window(
    filler: Filler,
    days: Sequence[int],
    targets: Sequence[int],
    load: Callable[[int], DayData | None],
    emit: Callable[[int, DayData | None, np.ndarray | None], None],
    progress: Progress | None = None,
    warmup: Sequence[int] = (),
) -> None:
    """Stream ``days`` (sorted day numbers with data) through ``filler`` and call
    ``emit(day, data, estimate)`` for each of ``targets`` (sorted, a subset of ``days``);
    ``data`` is None when ``load`` could not provide the day.

    ``warmup``: days before the first target that the window walks through first (their
    days are added and dropped as for a target, nothing is estimated), so that a filler
    whose stored state depends on the days added before (``anomaly``) starts a chunk of
    days from the same kind of state as inside a run."""
    half = filler.half_window
    days = sorted(days)
    emit_days = set(targets)
    added: set[int] = set()
    nxt = 0
    cache: tuple[int, DayData | None] | None = None
    try:
        for t in sorted(emit_days | set(warmup)):
            for d in sorted(added):
                if d < t - half:
                    filler.drop(d)
                    added.discard(d)
            while nxt < len(days) and days[nxt] <= t + half:
                d = days[nxt]
                nxt += 1
                if d < t - half or half == 0:
                    continue
                data = load(d)
                cache = (d, data)
                if data is not None:
                    filler.add(d, data)
                    added.add(d)
            if t not in emit_days:
                cache = None
                continue
            data_t = cache[1] if cache is not None and cache[0] == t else load(t)
            cache = None
            est = filler.estimate(t, data_t) if data_t is not None else None
            emit(t, data_t, est)
            del data_t, est
            trim_freed()
            if progress is not None:
                progress.advance()
    finally:
        filler.close()


# ---------------------------------------------------------------------------------------
# in-memory stacks
# ---------------------------------------------------------------------------------------


def _day_numbers(days: Sequence[Any] | None, n: int) -> list[int]:
    if days is None:
        return list(range(n))
    out = [d.toordinal() if isinstance(d, dt.date) else int(d) for d in days]
    if len(out) != n or len(set(out)) != n:
        raise SsmError(f"days must list {n} distinct days, got {len(out)} ({len(set(out))} distinct)")
    return out


@keep_freed_memory()
def gapfill_stack(
    lst: np.ndarray,
    background: np.ndarray | None = None,
    *,
    days: Sequence[Any] | None = None,
    footprint: Footprint | int | None = None,
    dem: np.ndarray | None = None,
    ndvi: np.ndarray | None = None,
    land: np.ndarray | None = None,
    pixel_km: float = 1.0,
    options: GapfillOptions | None = None,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
    **option_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Gap-fill a stack of days held in memory.

    Parameters
    ----------
    lst : (D, H, W) clear-sky LST (K), NaN under cloud/water.
    background : (D, H, W) all-weather background already at 1 km (K), or None for the
        methods that do not use it.
    days : D day numbers or dates (calendar spacing of the window); default 0..D-1.
    footprint : the background footprint (an object with ``smooth``), or an int ``k``
        for ``k x k`` pixel blocks (:class:`BlockFootprint`).
    dem : (H, W) elevation (m) for the lapse-rate correction.
    ndvi : (H, W) or (D, H, W) NDVI (prior of the persistent anomaly).
    land : (H, W) bool pixels to fill; default: pixels observed at least once.
    options / option_kwargs : :class:`GapfillOptions` or its fields.

    Returns ``(lst_out (D, H, W) float32, flags (D, H, W) uint8, info)`` with
    ``info["lapse_rate"]`` (K/m).
    """
    opt = options if options is not None else GapfillOptions(**option_kwargs)
    if options is not None and option_kwargs:
        opt = opt.replace(**option_kwargs)
    lst = np.asarray(lst, dtype=np.float32)
    if lst.ndim != 3:
        raise SsmError(f"lst must be (days, height, width), got shape {lst.shape}")
    nd, h, w = lst.shape
    if opt.needs_background:
        if background is None or np.shape(background) != lst.shape:
            raise SsmError(f"the {opt.method} method needs a background stack of shape {lst.shape}")
        background = np.asarray(background, dtype=np.float32)
    numbers = _day_numbers(days, nd)
    index = {d: i for i, d in enumerate(numbers)}
    if isinstance(footprint, (int, np.integer)):
        footprint = BlockFootprint((h, w), int(footprint))
    if land is None:
        land = np.isfinite(lst).any(axis=0)
    model = BackgroundModel()
    if opt.needs_background:
        step = max(1, nd // MODEL_SAMPLE_DAYS)
        samples = [(lst[i], background[i]) for i in range(0, nd, step)]
        model = learn_background_model(samples, footprint, dem, land, opt)
    if footprint is not None:
        footprint = footprint.with_sigma(model.sigma_cells)
    dz = None
    if dem is not None and footprint is not None:
        dz = (dem - footprint.smooth(dem)).astype(np.float32)
    static = StaticLayers((h, w), float(pixel_km), land, dz, footprint)

    def ndvi_of(i: int) -> np.ndarray | None:
        if ndvi is None:
            return None
        return ndvi[i] if np.ndim(ndvi) == 3 else ndvi

    filler = make_filler(static, opt, model)
    out = np.full(lst.shape, np.nan, dtype=np.float32)
    flags = np.full(lst.shape, FLAG_NONE, dtype=np.uint8)

    def load(d: int) -> DayData | None:
        i = index[d]
        bg = background[i] if background is not None else None
        if opt.needs_background and bg is not None and not np.isfinite(bg).any():
            return None
        return DayData(lst[i], bg, ndvi_of(i))

    def emit(d: int, data: DayData | None, est: np.ndarray | None) -> None:
        i = index[d]
        out[i], flags[i] = assemble(lst[i], est, land, opt.valid_range)

    run_window(filler, numbers, numbers, load, emit, Progress(nd, progress, is_cancelled))
    return out, flags, {"lapse_rate": model.lapse_rate, "model": model}


# ---------------------------------------------------------------------------------------
# series of files
# ---------------------------------------------------------------------------------------


def _lst_grid(path: Path) -> Grid:
    if is_mod11(path):
        from .modis import subdataset

        return Grid.from_raster(subdataset(path, "LST_Day_1km"))
    return Grid.from_raster(path)


def _check_folder_not_input(out: Path, inputs: Sequence[Path | None]) -> None:
    for p in inputs:
        if p is not None and Path(p).exists() and out.resolve() == Path(p).resolve():
            raise SsmError(f"{out}: the output folder is an input folder; choose another one (inputs are never overwritten)")


@keep_freed_memory()
def gapfill_series(
    lst_dir: str | Path,
    background_dir: str | Path | None,
    out_lst_dir: str | Path,
    out_flag_dir: str | Path,
    dem: str | Path | None = None,
    ndvi: str | Path | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    method: str = "anomaly",
    window: int = 15,
    *,
    options: GapfillOptions | None = None,
    lst_prefix: str = "lst",
    flag_prefix: str = "lst_flag",
    ndvi_max_age_days: int = 16,
    max_memory_mb: float = 2048.0,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
    executor: Executor | None = None,
    chunk_days: int = CHUNK_DAYS,
    **option_kwargs: Any,
) -> GapfillSummary:
    """Gap-fill a daily clear-sky LST series into an all-weather series plus flags.

    Parameters
    ----------
    lst_dir : folder of daily clear-sky LST rasters (K; nodata under cloud and water),
        dates in the file names; MOD11A1/MYD11A1 HDF files are read directly (QC honoured).
        Its grid is the output grid.
    background_dir : folder of daily all-weather background LST (K) on any grid/CRS
        (e.g. ERA5-Land skin temperature); needed by ``anomaly`` and ``background``.
    out_lst_dir, out_flag_dir : output folders (``<lst_prefix>_YYYY-MM-DD.tif`` float32 K,
        ``<flag_prefix>_YYYY-MM-DD.tif`` uint8: 0 observed, 1 filled, 255 none).
    dem : elevation raster (m), any grid, for the lapse-rate correction (optional).
    ndvi : NDVI folder (16-day composites; the latest within ``ndvi_max_age_days``) or one
        raster (optional): prior of the persistent anomaly and the land mask.
    start, end : the days to write (inclusive; None = open). Window days outside the
        range are read, not written.
    method, window, option_kwargs : see :class:`GapfillOptions` (or pass ``options``).
    executor : where the chunks of ``chunk_days`` days run (:mod:`..runner`; default
        serial in this process, whose day passes use every core already); every executor
        writes the same bytes (see :mod:`.chunked`).

    Land pixels to fill are those observed at least once in the period read, plus NDVI's
    valid pixels when NDVI is given; the rest (water, outside the data) stays nodata.
    Every input is checked before anything is written; a bad input raises an
    :class:`~ssm_downscaling.core.errors.SsmError` naming the file and the problem.
    """
    start, end = check_gapfill_args(locals())
    tune_huge_pages()
    opt = options if options is not None else GapfillOptions(method=method, window=window, **option_kwargs)
    if options is not None and option_kwargs:
        opt = opt.replace(**option_kwargs)
    start = as_date(start) if start not in (None, "") else None
    end = as_date(end) if end not in (None, "") else None
    if start is not None and end is not None and end < start:
        raise SsmError(f"The end date {end} is before the start date {start}")
    lst_series = DailySeries.from_folder(lst_dir)
    targets_series = lst_series.between(start, end)
    targets = targets_series.dates
    half = opt.half_window
    span = [
        d for d in lst_series.dates if targets[0] - dt.timedelta(days=half) <= d <= targets[-1] + dt.timedelta(days=half)
    ]
    out_lst_dir, out_flag_dir = Path(out_lst_dir), Path(out_flag_dir)
    inputs = [Path(lst_dir), Path(background_dir) if background_dir else None, Path(ndvi) if ndvi else None]
    _check_folder_not_input(out_lst_dir, inputs)
    _check_folder_not_input(out_flag_dir, inputs)
    if out_lst_dir.resolve() == out_flag_dir.resolve() and lst_prefix == flag_prefix:
        raise SsmError("The LST and flag outputs would overwrite each other: use two folders or two prefixes")

    # --- check every input before writing anything ---------------------------------
    grid = _lst_grid(lst_series.path(targets[0]))
    for d in span:
        p = lst_series.path(d)
        g = _lst_grid(p)
        if g.shape != grid.shape or not np.allclose(g.transform, grid.transform, rtol=0, atol=1e-6 * max(grid.res)):
            raise GridError(f"{p}: its grid ({g!r}) differs from the first LST file's ({grid!r})")
    bg_series = None
    footprint = None
    if opt.needs_background:
        if background_dir in (None, ""):
            raise SsmError(f"The {opt.method} method needs a background LST folder")
        bg_series = DailySeries.from_folder(background_dir)
        common = [d for d in targets if d in bg_series]
        if not common:
            raise SeriesError(
                f"No dates in common: the LST series {lst_dir} has {targets[0]}..{targets[-1]}, "
                f"the background {background_dir} has {bg_series.start}..{bg_series.end}"
            )
        for d in span:
            if d in bg_series:
                open_raster(bg_series.path(d))  # unreadable file -> RasterReadError naming it
        bg_file = bg_series.path(common[0])
        try:
            bg_grid = Grid.from_raster(bg_file)
            footprint = GridFootprint(grid, bg_grid)
        except GridError as exc:
            raise GridError(f"{bg_file}: the background does not overlap the LST grid ({exc})") from exc
        test = footprint.read(bg_file)
        if not np.isfinite(test).any():
            raise GridError(f"{bg_file}: the background has no data over the LST grid (no overlap)")
    dem_arr = None
    if dem not in (None, ""):
        dem_arr = read_raster(dem, grid, "bilinear")
        if not np.isfinite(dem_arr).any():
            raise GridError(f"{dem}: the DEM has no data over the LST grid (no overlap)")
    ndvi_src = None
    if ndvi not in (None, ""):
        ndvi_src = LayerSource.open(ndvi, max_age_days=ndvi_max_age_days)
        if not ndvi_src.is_static:
            for d in sorted({ndvi_src.date_for(t) for t in targets} - {None}):
                open_raster(ndvi_src.series.path(d))

    gapfill_preflight(lst_series=lst_series, background_series=bg_series, ndvi_src=ndvi_src, dem=dem,
                      out_lst=out_lst_dir, out_flags=out_flag_dir, lst_prefix=lst_prefix, flag_prefix=flag_prefix,
                      days=targets, method=opt.method)
    prog = Progress(len(targets) + max(1, len(span) // 4), progress, is_cancelled)

    # --- pre-pass: land mask (observed at least once), kelvin check ---------------
    pre = prog.sub(max(1, len(span) // 4), total=len(span))
    ever = np.zeros(grid.shape, dtype=bool)
    checked = False
    for d in span:
        a = read_lst(lst_series.path(d), grid)
        ok = np.isfinite(a)
        if not checked and ok.sum() >= 10:
            med = float(np.median(a[ok]))
            if not (KELVIN_CHECK[0] <= med <= KELVIN_CHECK[1]):
                raise SsmError(
                    f"{lst_series.path(d)}: LST values have a median of {med:g}; kelvin was expected "
                    f"(convert Celsius with +273.15; MODIS counts need the 0.02 scale factor)"
                )
            checked = True
        ever |= ok
        pre.advance()
    land = ever
    if ndvi_src is not None:
        nv = ndvi_src.read(targets[0], grid)
        land = ever | np.isfinite(nv)

    def read_bg(d: dt.date) -> np.ndarray | None:
        if bg_series is None or footprint is None or d not in bg_series:
            return None
        return footprint.read(bg_series.path(d))

    model = BackgroundModel()
    if opt.needs_background:
        have = [d for d in targets if bg_series is not None and d in bg_series]
        step = max(1, len(have) // MODEL_SAMPLE_DAYS)
        samples = [(read_lst(lst_series.path(d), grid), read_bg(d)) for d in have[::step]]
        model = learn_background_model(samples, footprint, dem_arr, land, opt)
    summary = GapfillSummary(
        opt.method,
        lapse_rate=model.lapse_rate if math.isfinite(model.lapse_rate) else None,
        background_model=model if opt.needs_background else None,
        options=opt.as_dict(),
    )
    job = GapfillJob(
        token=uuid.uuid4().hex, grid=grid, options=opt, model=model, land_bits=np.packbits(land.ravel()),
        lst_paths={d.toordinal(): str(lst_series.path(d)) for d in span},
        background_paths={} if bg_series is None else
        {d.toordinal(): str(bg_series.path(d)) for d in span if d in bg_series},
        background_grid=None if footprint is None else footprint.background,
        background_dir=str(background_dir or ""), dem=None if dem in (None, "") else str(dem), ndvi=ndvi_src,
        out_lst_dir=str(out_lst_dir), out_flag_dir=str(out_flag_dir), lst_prefix=lst_prefix,
        flag_prefix=flag_prefix, max_memory_mb=max_memory_mb,
    )
    static = job.static(footprint, dem_arr)
    days_all = [d.toordinal() for d in span]
    done = run_chunks(job, static, days_all, [d.toordinal() for d in targets], prog, executor, chunk_days)
    prog.finish()
    summary.lst_files, summary.flag_files, summary.days_skipped = done.lst_files, done.flag_files, done.skipped
    summary.pixels_observed, summary.pixels_filled, summary.pixels_unfilled = done.observed, done.filled, done.unfilled
    summary.days_processed = done.days
    log.info("%s", summary.text())
    return summary


__all__ = [
    "GapfillSummary",
    "RasterReadError",
    "gapfill_series",
    "gapfill_stack",
    "make_filler",
    "run_window",
]
