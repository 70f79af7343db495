"""A gap-filling run cut into chunks of consecutive days that any executor can run
(:mod:`..runner`: serial, threads, local processes, ``dask.distributed``).

The run-wide parts are made once by the driver (:func:`.gapfill.gapfill_series`): the land
mask, the background model and the checks. Each chunk then streams its own window of days
through a fresh filler and writes its days. The ``anomaly`` filler's stored state depends
on the days added before (each day's regional fit removes the persistent anomaly of the
window days already held), so a chunk first walks through the ``warmup`` days before its
first day, without estimating them. The chunks are cut the same way whatever the
executor, so every executor writes the same bytes; the chunk length only sets how far back
a day's state reaches (at most one chunk plus the warm-up).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SeriesError
from ..grid import Grid
from ..memory import keep_freed_memory, tune_huge_pages
from ..progress import Progress
from ..runner import Executor, SerialExecutor, ThreadExecutor, worker_numba_threads
from ..series import LayerSource, read_raster, write_day
from .background import BackgroundModel
from .footprint import GridFootprint
from .methods import (
    FLAG_FILLED,
    FLAG_LEGEND,
    FLAG_NONE,
    FLAG_OBSERVED,
    LST_DESCRIPTION,
    DayData,
    StaticLayers,
    assemble,
)
from .modis import is_mod11, read_mod11a1
from .options import GapfillOptions

log = logging.getLogger(__name__)

#: target days per chunk (a task of the executor)
CHUNK_DAYS = 128


def warmup_days(options: GapfillOptions) -> int:
    """Days a chunk walks through before its first day: the ``anomaly`` window's reach
    (a day added to the window saw the ``2 * half_window`` days before it); 0 for the
    fillers whose state is only the window's inputs."""
    return 2 * options.half_window if options.method == "anomaly" else 0


def read_lst(path: str | Path, grid: Grid | None) -> np.ndarray:
    """A day's clear-sky LST (K, NaN = no data) on ``grid``: MOD11A1/MYD11A1 HDF (QC
    honoured) or any raster."""
    if is_mod11(path):
        return read_mod11a1(path, grid=grid).lst
    return read_raster(path, grid, resampling="nearest")


@dataclass(frozen=True)
class GapfillJob:
    """Everything a worker needs to fill a chunk of days (picklable, small: the static
    layers are rebuilt from it once per worker process, the same way as by the driver)."""

    token: str
    grid: Grid
    options: GapfillOptions
    model: BackgroundModel
    land_bits: np.ndarray  # np.packbits of the land mask
    lst_paths: dict[int, str]  # day number -> file
    background_paths: dict[int, str]
    background_grid: Grid | None
    background_dir: str
    dem: str | None
    ndvi: LayerSource | None
    out_lst_dir: str
    out_flag_dir: str
    lst_prefix: str
    flag_prefix: str
    max_memory_mb: float

    @property
    def land(self) -> np.ndarray:
        """The land mask, (H, W) bool."""
        n = self.grid.shape[0] * self.grid.shape[1]
        return np.unpackbits(self.land_bits, count=n).astype(bool).reshape(self.grid.shape)

    def footprint(self, base: GridFootprint | None = None) -> GridFootprint | None:
        """The background footprint with the model's effective-resolution blur."""
        if self.background_grid is None:
            return None
        base = base if base is not None else GridFootprint(self.grid, self.background_grid)
        return base.with_sigma(self.model.sigma_cells)

    def static(self, footprint: GridFootprint | None = None, dem: np.ndarray | None = None) -> StaticLayers:
        """The run's :class:`StaticLayers` (``footprint``/``dem``: already built or read by
        the driver, else made here)."""
        fp = self.footprint(footprint)
        if dem is None and self.dem not in (None, ""):
            dem = read_raster(self.dem, self.grid, "bilinear")
        dz = None
        if dem is not None and fp is not None:
            dz = (dem - fp.smooth(dem)).astype(np.float32)
        pixel_km = math.sqrt(float(np.mean(self.grid.pixel_areas()))) / 1000.0
        return StaticLayers(self.grid.shape, pixel_km, self.land, dz, fp)

    def load(self, n: int, skip_reason: dict[int, str]) -> DayData | None:
        """The inputs of day number ``n`` (None, with the reason, when it cannot be filled)."""
        d = dt.date.fromordinal(n)
        lst = read_lst(self.lst_paths[n], self.grid)
        bg = None
        if self.options.needs_background:
            path = self.background_paths.get(n)
            if path is None or self.background_grid is None:
                skip_reason[n] = f"no background file for this day in {self.background_dir}"
                return None
            bg = _static_for(self).footprint.read(path)  # read() does not depend on the blur
            if not np.isfinite(bg).any():
                skip_reason[n] = f"{path} has no data over the LST grid"
                return None
        nv = None
        if self.ndvi is not None and self.ndvi.covers(d):
            nv = self.ndvi.read(d, self.grid)
        return DayData(lst, bg, nv)


@dataclass
class ChunkResult:
    """What a chunk wrote and counted (merged by the driver in day order into the
    :class:`.gapfill.GapfillSummary`): pixel-days observed, filled, and land left unfilled."""

    lst_files: list[Path] = field(default_factory=list)
    flag_files: list[Path] = field(default_factory=list)
    skipped: list[tuple[dt.date, str]] = field(default_factory=list)
    observed: int = 0
    filled: int = 0
    unfilled: int = 0
    days: int = 0


# per-process state of the runs: the static layers (built once per worker), and for
# the tasks in the driver's process its progress and cancel hooks
_STATIC: dict[str, StaticLayers] = {}
_HOOKS: dict[str, Progress] = {}
_LOCK = threading.Lock()


def _static_for(job: GapfillJob) -> StaticLayers:
    worker_numba_threads()  # every task starts here
    with _LOCK:
        st = _STATIC.get(job.token)
        if st is None:
            tune_huge_pages()  # a worker process: once
            st = _STATIC[job.token] = job.static()
        return st


def register(job: GapfillJob, static: StaticLayers, progress: Progress | None) -> None:
    """Give the tasks run in this process the driver's static layers and progress."""
    with _LOCK:
        _STATIC[job.token] = static
        if progress is not None:
            _HOOKS[job.token] = progress


def forget(token: str) -> None:
    """Drop this process's state of a finished run."""
    with _LOCK:
        _STATIC.pop(token, None)
        _HOOKS.pop(token, None)


def _tick(token: str) -> None:
    """One day done: advance the driver's progress (tasks in the driver's process)."""
    with _LOCK:  # one at a time: thread workers share the driver's progress
        prog = _HOOKS.get(token)
        if prog is not None:
            prog.advance()


@keep_freed_memory()
def run_chunk(task: tuple[GapfillJob, tuple[int, ...], tuple[int, ...], tuple[int, ...]]) -> ChunkResult:
    """Fill one chunk: ``(job, days, warmup, targets)`` with ``days`` the day numbers the
    chunk may read (sorted), ``warmup`` the days walked through first, ``targets`` the days
    it writes."""
    from .gapfill import make_filler, run_window

    job, days, warmup, targets = task
    static = _static_for(job)
    filler = make_filler(static, job.options, job.model, job.max_memory_mb)
    out = ChunkResult()
    skip_reason: dict[int, str] = {}

    def emit(n: int, data: DayData | None, est: np.ndarray | None) -> None:
        d = dt.date.fromordinal(n)
        if data is None:
            reason = skip_reason.get(n, "no input")
            log.warning("%s skipped: %s", d, reason)
            out.skipped.append((d, reason))
        else:
            lst, flags = assemble(data.lst, est, static.land, job.options.valid_range)
            out.lst_files.append(write_day(job.out_lst_dir, job.lst_prefix, d, lst, job.grid,
                                           description=LST_DESCRIPTION))
            out.flag_files.append(write_day(job.out_flag_dir, job.flag_prefix, d, flags, job.grid,
                                            dtype=np.uint8, description=FLAG_LEGEND))
            obs, fill, none = flags == FLAG_OBSERVED, flags == FLAG_FILLED, flags == FLAG_NONE
            out.observed += int(obs.sum())
            out.filled += int(fill.sum())
            out.unfilled += int((none & static.land).sum() if static.land is not None else none.sum())
            out.days += 1
            log.info("%s: %.1f %% observed, %.1f %% filled, %.1f %% no data", d,
                     100.0 * float(obs.mean()), 100.0 * float(fill.mean()), 100.0 * float(none.mean()))
        _tick(job.token)

    run_window(filler, days, targets, lambda n: job.load(n, skip_reason), emit, warmup=warmup)
    return out


def chunk_tasks(job: GapfillJob, days: Sequence[int], targets: Sequence[int], chunk_days: int = CHUNK_DAYS,
                ) -> list[tuple[GapfillJob, tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """The run's tasks: ``targets`` (sorted day numbers) cut into runs of ``chunk_days``,
    each with the days it reads and its warm-up days (from ``days``, the days with data)."""
    half = job.options.half_window
    back = warmup_days(job.options)
    days = sorted(days)
    targets = sorted(targets)
    tasks = []
    for i in range(0, len(targets), max(1, int(chunk_days))):
        tgt = tuple(targets[i : i + max(1, int(chunk_days))])
        warm = tuple(d for d in days if tgt[0] - back <= d < tgt[0])
        first = (warm[0] if warm else tgt[0]) - half
        reads = tuple(d for d in days if first <= d <= tgt[-1] + half)
        tasks.append((job, reads, warm, tgt))
    return tasks


def run_chunks(
    job: GapfillJob,
    static: StaticLayers,
    days: Sequence[int],
    targets: Sequence[int],
    progress: Progress,
    executor: Executor | None = None,
    chunk_days: int = CHUNK_DAYS,
) -> ChunkResult:
    """Run every chunk on ``executor`` (default: serial, in this process) and merge their
    results in day order. Tasks in this process share the driver's static layers and
    report progress per day; other workers rebuild the layers once and report per chunk."""
    executor = executor or SerialExecutor()
    local = isinstance(executor, (SerialExecutor, ThreadExecutor))
    register(job, static, progress if local else None)
    total = ChunkResult()
    try:
        tasks = chunk_tasks(job, days, targets, chunk_days)
        if not local:
            shared = executor.share(job)
            tasks = [(shared, *t[1:]) for t in tasks]
        for task, res in zip(tasks, executor.map(run_chunk, tasks)):
            total.lst_files += res.lst_files
            total.flag_files += res.flag_files
            total.skipped += res.skipped
            total.observed += res.observed
            total.filled += res.filled
            total.unfilled += res.unfilled
            total.days += res.days
            if not local:
                progress.advance(len(task[3]))
    finally:
        forget(job.token)
        executor.on_workers(forget, job.token)
    if total.days == 0:
        raise SeriesError(f"No day could be processed: {'; '.join(f'{d}: {r}' for d, r in total.skipped[:3])}")
    return total
