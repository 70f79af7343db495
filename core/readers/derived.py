"""Derived daily inputs of the downscaling: the day-night LST difference, and composites
(e.g. 16-day NDVI) served as daily values."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np

from ..errors import SeriesError
from ..progress import CancelFn, Progress, ProgressFn
from ..series import DailySeries, daterange, write_day

log = logging.getLogger(__name__)


def day_night_difference(
    day_dir: str | Path,
    night_dir: str | Path,
    out_dir: str | Path,
    prefix: str = "lst_diff",
    start: dt.date | None = None,
    end: dt.date | None = None,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
) -> list[Path]:
    """Day minus night LST (K) for every day both series have, on the day series' grid.

    The night LST is warped onto the day grid (nearest). NaN where either is missing.
    """
    dseries = DailySeries.from_folder(day_dir)
    nseries = DailySeries.from_folder(night_dir)
    days = [d for d in dseries.dates if d in nseries and (start is None or d >= start) and (end is None or d <= end)]
    if not days:
        raise SeriesError(f"{day_dir} and {night_dir}: no day in common (in the date range)")
    grid = dseries.grid()
    prog = Progress(len(days), progress, is_cancelled)
    out = []
    for d in days:
        a = dseries.read(d, grid, "nearest")
        b = nseries.read(d, grid, "nearest")
        diff = (a - b).astype(np.float32)
        out.append(write_day(out_dir, prefix, d, diff, grid, metadata={"PRODUCT": "lst_day_minus_night"}))
        prog.advance()
    log.info("day-night LST difference: %d day(s) written to %s", len(out), out_dir)
    return out


def composites_as_daily(
    folder: str | Path,
    out_dir: str | Path,
    prefix: str,
    period_days: int = 16,
    start: dt.date | None = None,
    end: dt.date | None = None,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
) -> list[Path]:
    """Write each composite of ``folder`` (dated by its first day) for every day it covers:
    from its date to the day before the next composite, at most ``period_days`` days, and
    never past the end of its year (MODIS composites restart on 1 January)."""
    series = DailySeries.from_folder(folder)
    dates = series.dates
    grid = series.grid()
    prog = Progress(len(dates), progress, is_cancelled)
    out = []
    for i, d in enumerate(dates):
        nxt = dates[i + 1] if i + 1 < len(dates) else None
        last = d + dt.timedelta(days=period_days - 1)
        serve = [s for s in daterange(d, last) if (nxt is None or s < nxt) and s.year == d.year
                 and (start is None or s >= start) and (end is None or s <= end)]
        if serve:
            arr = series.read(d, grid, "nearest")
            for s in serve:
                out.append(write_day(out_dir, prefix, s, arr, grid, metadata={"COMPOSITE_DATE": d.isoformat()}))
        prog.advance()
    return out
