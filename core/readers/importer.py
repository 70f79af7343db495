"""Import a batch of product files into a daily series on a target grid.

Files are grouped by date; each is read by its product's reader (native grid, SI units,
masks applied), placed onto the target grid (``gdal.Warp`` in memory) or, without a
target, onto the product's native grid (MODIS tiles: the union of the tiles, which share
the sinusoidal grid), mosaicked (Terra/Aqua by rule), and written as
``<prefix>_YYYY-MM-DD.tif`` (DESIGN.md 3). A file that cannot be read, is all fill or does
not overlap the target is skipped with its reason; the rest of the batch still imports.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SsmError
from ..grid import Grid, array_to_mem, warp_to_grid
from ..progress import CancelFn, Progress, ProgressFn
from ..series import date_from_name, day_filename, write_day
from .base import ProductDay, ProductError
from .products import PRODUCTS, ImportOptions, read_file

log = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    """What an import read, wrote and skipped (with reasons)."""

    product: str
    out_dir: Path
    files_read: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    grid: Grid | None = None

    @property
    def days(self) -> list[dt.date]:
        return sorted(date_from_name(p.name) for p in self.written)

    def text(self) -> str:
        lines = [f"{PRODUCTS[self.product][0]}: {len(self.files_read)} file(s) read, {len(self.skipped)} skipped, "
                 f"{len(self.written)} day(s) written to {self.out_dir}"]
        lines += [f"  skipped {Path(f).name}: {why}" for f, why in self.skipped]
        return "\n".join(lines)


def list_inputs(paths: Iterable[str | Path], pattern: str = "*") -> list[Path]:
    """Files from ``paths`` (files, or folders searched recursively for ``pattern``), sorted,
    without duplicates and hidden/auxiliary files (``.aux.xml``, ``.xml``)."""
    out: list[Path] = []
    for p in paths:
        if not str(p).strip():
            continue
        p = Path(str(p))
        if p.is_dir():
            cands = [c for c in p.rglob("*") if c.is_file() and fnmatch.fnmatch(c.name.lower(), pattern.lower())]
        elif p.is_file():
            cands = [p]
        else:
            raise ProductError(f"{p}: no such file or folder")
        for c in sorted(cands):
            if c.name.startswith(".") or c.name.lower().endswith((".aux.xml", ".xml", ".md5", ".txt")):
                continue
            if c not in out:
                out.append(c)
    return out


def _approx_res_m(grid: Grid) -> float:
    r = grid.res[0]
    return r * 111_320.0 if grid.is_geographic else r * grid.srs.GetLinearUnits()


def resampling_for(src: Grid, dst: Grid, options: ImportOptions) -> str:
    """The resampling of a product onto a target (see ``ImportOptions.resampling``)."""
    if options.resampling != "auto":
        return options.resampling
    if _approx_res_m(dst) > 1.5 * _approx_res_m(src) and options.kind != "coarse":
        return "average"
    return PRODUCTS[options.product][2]


def place(pd: ProductDay, grid: Grid, options: ImportOptions) -> np.ndarray:
    """``pd`` on ``grid`` (float32, NaN missing)."""
    if pd.grid == grid:
        return pd.data
    win = pd.grid.window_of(grid)
    if win is not None:  # an aligned window: copy, no resampling
        return warp_to_grid(array_to_mem(pd.data, pd.grid), grid, "nearest")
    return warp_to_grid(array_to_mem(pd.data, pd.grid), grid, resampling_for(pd.grid, grid, options))


def union_grid(grids: Sequence[Grid]) -> Grid:
    """The smallest grid holding aligned grids (MODIS tiles of one projection and size)."""
    g0 = grids[0]
    xs, ys = [], []
    for g in grids:
        if g0.window_of(g) is None:
            raise ProductError(f"the tiles are not on one grid ({g!r} vs {g0!r}); give a target grid")
        b = g.bounds
        xs += [b[0], b[2]]
        ys += [b[1], b[3]]
    rx, ry = g0.res
    w = int(round((max(xs) - min(xs)) / rx))
    h = int(round((max(ys) - min(ys)) / ry))
    return Grid(g0.crs_wkt, (min(xs), rx, 0.0, max(ys), 0.0, -ry), w, h)


def _mosaic(arrays: Sequence[np.ndarray]) -> np.ndarray:
    out = np.full(arrays[0].shape, np.nan, dtype=np.float32)
    for a in arrays:
        take = np.isnan(out) & np.isfinite(a)
        out[take] = a[take]
    return out


def _combine_platforms(by_platform: dict[str, np.ndarray], rule: str) -> np.ndarray | None:
    t, a = by_platform.get("terra"), by_platform.get("aqua")
    other = by_platform.get("")  # files without a platform (or MCD)
    if rule == "terra":
        out = t
    elif rule == "aqua":
        out = a
    elif rule == "mean" and t is not None and a is not None:
        with np.errstate(invalid="ignore"):
            out = np.where(np.isfinite(t) & np.isfinite(a), (t + a) / 2, np.where(np.isfinite(t), t, a)).astype(np.float32)
    else:
        first, second = (a, t) if rule == "aqua_then_terra" else (t, a)
        present = [x for x in (first, second) if x is not None]
        out = _mosaic(present) if present else None
    if other is not None:
        out = other if out is None else _mosaic([out, other])
    return out


def _check_output(out_dir: Path, inputs: Sequence[Path]) -> None:
    for p in inputs:
        if out_dir.resolve() == p.parent.resolve():
            raise SsmError(f"{out_dir}: the output folder holds input files ({p.name}); choose another one "
                           "(inputs are never overwritten)")


def import_product(
    files: Sequence[str | Path],
    out_dir: str | Path,
    options: ImportOptions,
    grid: Grid | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
    clip: Grid | None = None,
) -> ImportSummary:
    """Import ``files`` of ``options.product`` into the daily series ``out_dir``.

    ``grid``: the target grid; None = the product's native grid (for MODIS the union of
    the tiles given), cropped to the footprint of ``clip`` when given (a pixel-aligned
    window: the product's cells are kept as they are). ``start``/``end``: the days written
    (inclusive; None = open).
    Raises :class:`SsmError` only when nothing at all could be imported.
    """
    out = Path(out_dir)
    paths = [Path(str(f)) for f in files]
    if not paths:
        raise ProductError("no input file was given (or none matched the pattern)")
    _check_output(out, paths)
    summary = ImportSummary(options.product, out)
    prog = Progress(len(paths) + 1, progress, is_cancelled)
    if grid is None and clip is not None:
        grid = _Clip(clip)
    if options.product == "reanalysis":
        _import_reanalysis(paths, out, options, grid, start, end, summary, prog)
    elif options.product == "ts_cells":
        _import_cells(paths, out, options, grid, start, end, summary, prog)
    else:
        _import_files(paths, out, options, grid, start, end, summary, prog)
    prog.finish()
    log.info(summary.text())
    if not summary.written:
        reasons = "; ".join(f"{Path(f).name}: {why}" for f, why in summary.skipped[:5])
        raise ProductError(f"nothing was imported ({reasons or 'no file in the date range'})")
    return summary


class _Clip:
    """Marker: the native grid, cropped to ``clip``'s footprint, resolved on the first file."""

    def __init__(self, clip: Grid):
        self.clip = clip

    def resolve(self, native: Grid) -> Grid:
        try:
            return native.covering(self.clip, margin=0)
        except SsmError as exc:
            raise ProductError(f"the product's grid does not overlap the extent: {exc}") from exc


def _resolve(grid, native: Grid) -> Grid:
    return grid.resolve(native) if isinstance(grid, _Clip) else (grid or native)


def _in_range(day: dt.date, start: dt.date | None, end: dt.date | None, reach: int = 0) -> bool:
    return (start is None or day + dt.timedelta(days=reach) >= start) and (end is None or day <= end)


def _import_files(paths, out, options, grid, start, end, summary, prog) -> None:
    """Day by day: read the day's files, place each onto the target, mosaic, write, forget
    (memory is one target-sized array per platform plus one native file)."""
    reach = options.composite_days - 1 if options.is_composite else 0
    by_day: dict[dt.date, list[Path]] = defaultdict(list)
    for p in paths:
        d = date_from_name(p.name)
        if d is None:
            summary.skipped.append((str(p), "no date in the file name"))
            prog.advance()
            continue
        if not _in_range(d, start, end, reach):
            prog.advance()
            continue
        by_day[d].append(p)
    days = sorted(by_day)
    clip = grid if isinstance(grid, _Clip) else None
    grid = None if clip else grid
    target = grid
    for d in days:
        by_day[d].sort(key=lambda p: (_pass_order(p), p.name))
    for i, d in enumerate(days):
        acc: dict[str, np.ndarray] = {}
        sources: list[str] = []
        for p in by_day[d]:
            pd = _read_one(p, options, summary)
            prog.advance()
            if pd is None:
                continue
            if target is None:
                target = _resolve(clip, _native_target(pd, [q for dd in days[i:] for q in by_day[dd]]))
                summary.grid = target
            if grid is not None and not _overlaps(pd.grid, target):
                summary.skipped.append((str(p), "does not overlap the target grid"))
                continue
            arr = place(pd, target, options)
            if not np.isfinite(arr).any():
                summary.skipped.append((str(p), "no valid value over the target grid"))
                continue
            key = pd.platform if pd.platform in ("terra", "aqua") else ""
            if key in acc:
                take = np.isnan(acc[key]) & np.isfinite(arr)
                acc[key][take] = arr[take]
            else:
                acc[key] = arr
            summary.files_read.append(str(p))
            sources.append(str(p))
        if not acc:
            continue
        day_arr = _combine_platforms(acc, options.platform_rule)
        del acc
        if day_arr is None:
            continue
        if options.is_composite:
            nxt = days[i + 1] if i + 1 < len(days) else None
            serve = [d + dt.timedelta(days=k) for k in range(options.composite_days)]
            serve = [s for s in serve if (nxt is None or s < nxt) and s.year == d.year and _in_range(s, start, end)]
        else:
            serve = [d] if _in_range(d, start, end) else []
        for s in serve:
            summary.written.append(_write(out, options, s, day_arr, target, source=";".join(sources)))
        summary.grid = target
        prog.check()


def _read_one(p: Path, options: ImportOptions, summary: ImportSummary) -> ProductDay | None:
    """One file read, or None with the reason recorded."""
    try:
        pd = read_file(p, options)
    except SsmError as exc:
        summary.skipped.append((str(p), str(exc).replace(f"{p}: ", "")))
        log.warning("skipped %s: %s", p.name, exc)
        return None
    except RuntimeError as exc:  # GDAL errors not caught by a reader
        summary.skipped.append((str(p), f"cannot be read: {exc}"))
        return None
    if options.kind == "modis" and options.platform_rule in ("terra", "aqua") and pd.platform not in (
        options.platform_rule, "combined", ""
    ):
        summary.skipped.append((str(p), f"{pd.platform} file left out (platform rule {options.platform_rule})"))
        return None
    file_pass = pd.info.get("pass", "")
    orbit = options.overpass_pass  # A (ascending) / D (descending) / "any"
    if options.product in ("lprm", "jaxa") and orbit not in ("any",) and file_pass != orbit:
        summary.skipped.append((str(p), f"pass {file_pass or '?'} left out (pass {options.overpass_pass} asked for)"))
        return None
    if not np.isfinite(pd.data).any():
        summary.skipped.append((str(p), "all fill or rejected by quality"))
        return None
    return pd


def _pass_order(p: Path) -> int:
    """Descending (night) files first, so that they win where both passes have a value."""
    import re

    return 0 if re.search(r"_(L3_D|EQMD)_", p.name, re.IGNORECASE) else 1


def _native_target(first: ProductDay, paths: Sequence[Path]) -> Grid:
    """The native output grid: the first file's grid, or for MODIS tiles the union of the
    tiles named by the files (from their ``hHHvVV``, at the first file's pixel count)."""
    from .modis_tiles import tile_grid, tile_of

    hv0 = tile_of(first.source)
    if hv0 is None or first.grid.width != first.grid.height:
        return first.grid
    tiles = {tile_of(p) for p in paths} - {None}
    n = first.grid.width
    return union_grid([tile_grid(h, v, n) for h, v in sorted(tiles)]) if len(tiles) > 1 else first.grid


def _overlaps(src: Grid, dst: Grid) -> bool:
    try:
        src.covering(dst, margin=0)
        return True
    except SsmError:
        return False


def _write(out: Path, options: ImportOptions, day: dt.date, arr: np.ndarray, grid: Grid, source: str) -> Path:
    md = {"PRODUCT": options.product, "SOURCE": "; ".join(Path(s).name for s in source.split(";"))[:2000]}
    return write_day(out, options.out_prefix, day, arr, grid, metadata=md)


def _import_reanalysis(paths, out, options, grid, start, end, summary, prog) -> None:
    from .reanalysis import at_overpass, read_steps

    steps = []
    for p in paths:
        try:
            s = read_steps(p, options.reanalysis_variable, lazy=True)
            if not s:
                raise ProductError(f"{p}: no time step of {options.reanalysis_variable}")
            _ = s[0].data  # read one step now: a wrong product or truncated file is skipped here
        except SsmError as exc:
            summary.skipped.append((str(p), str(exc).replace(f"{p}: ", "")))
            log.warning("skipped %s: %s", p.name, exc)
            prog.advance()
            continue
        if isinstance(grid, Grid) and not _overlaps(s[0].grid, grid):
            summary.skipped.append((str(p), "does not overlap the target grid"))
            prog.advance()
            continue
        steps += s
        summary.files_read.append(str(p))
        prog.advance()
    if not steps:
        return
    g0 = steps[0].grid
    for s in steps:
        if s.grid != g0 and (s.source, "its grid differs") not in summary.skipped:
            summary.skipped.append((s.source, f"its grid differs from {Path(steps[0].source).name}'s"))
    steps = sorted((s for s in steps if s.grid == g0), key=lambda s: s.time)
    target = _resolve(grid, g0)
    summary.grid = target
    hours = options.overpass_hours + np.array([-12.0, 12.0])  # local solar time - longitude / 15 h
    lo = dt.timedelta(hours=float(hours.min()) - options.max_gap_hours)
    hi = dt.timedelta(hours=float(hours.max()) + options.max_gap_hours)
    for d in sorted({s.time.date() for s in steps}):
        if not _in_range(d, start, end):
            continue
        t0 = dt.datetime(d.year, d.month, d.day)
        near = [s for s in steps if t0 + lo <= s.time <= t0 + hi]
        for s in steps:  # steps the next days cannot need any more
            if s.time < t0 + lo:
                s.release()
        if not near:
            continue
        try:
            pd = at_overpass(near, d, options.overpass_hours, options.time_method, options.max_gap_hours)
        except SsmError as exc:
            summary.skipped.append((near[0].source, f"{d}: {exc}"))
            continue
        if not np.isfinite(pd.data).any():
            summary.skipped.append((pd.source, f"{d}: no step within {options.max_gap_hours} h of the overpass"))
            continue
        arr = place(pd, target, options)
        summary.written.append(_write(out, options, d, arr, target, pd.source))
        prog.check()


def _import_cells(paths, out, options, grid, start, end, summary, prog) -> None:
    from .timeseries import cells_to_days, read_cells

    files = [p for p in paths if p.suffix.lower() == ".nc" and p.name != "grid.nc"]
    for p in paths:
        if p not in files and p.name != "grid.nc":
            summary.skipped.append((str(p), "not a time-series cell file (NNNN.nc)"))
    cells = read_cells(files, quality=options.esa_flag_zero_only)
    summary.files_read += cells.sources
    prog.advance(len(paths))
    days = [pd for pd in cells_to_days(cells) if _in_range(pd.date, start, end) and np.isfinite(pd.data).any()]
    target = _resolve(grid, days[0].grid) if days else None
    summary.grid = target
    for pd in days:
        arr = place(pd, target, options)
        if np.isfinite(arr).any():
            summary.written.append(_write(out, options, pd.date, arr, target, pd.source))
        prog.check()


__all__ = ["ImportSummary", "day_filename", "import_product", "list_inputs"]
