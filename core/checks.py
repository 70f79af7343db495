"""Plausible units and undeclared fill values, checked on the first few days of every input
before anything is computed.

Each variable has a plausible range in the unit the methods expect (:data:`VARIABLES`).
A sample of each input file (at most :data:`MAX_SAMPLE` pixels, nodata masked and the
band's scale/offset applied, as the readers do) is checked for

1. **undeclared fill**: one exact value outside the plausible range repeated on many pixels
   (-9999, -999, -32768, 32767, 65535, 0 for LST ...), named with its count and the fix
   (declare it as nodata);
2. **units**: soil moisture in percent (0-100), LST in degrees Celsius or as MODIS counts
   (scale 0.02), NDVI on the MODIS integer scale (0-10000, scale 0.0001) or scaled twice
   (scale metadata kept on values already scaled), albedo on the MODIS scale (0-1000,
   scale 0.001) or in percent, values simply out of range.

A failed check raises :class:`UnitError` naming the file, its date, what was found and the
fix; nothing has been written at that point. Soil moisture in percent can be converted on
request (``ssm_percent=True``: the values are divided by 100 as they are read).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RasterReadError, SsmError

log = logging.getLogger(__name__)

#: pixels sampled per file (a decimated read keeps exact values)
MAX_SAMPLE = 250_000
#: days checked per series
CHECK_DAYS = 3
#: values commonly used as fill (named when found)
FILL_CANDIDATES = (-9999.0, -999.0, -99.0, -32768.0, -32767.0, 32767.0, 65535.0, 65534.0, 9999.0, 255.0,
                   -3.4028234663852886e38, 3.4028234663852886e38, 1e20, -1e20, 0.0)


class UnitError(SsmError):
    """An input whose values are not in the expected unit, or hold an undeclared fill value."""


@dataclass(frozen=True)
class Variable:
    """A physical variable: ``label`` as in messages, ``unit``, plausible range ``lo..hi``."""

    key: str
    label: str
    unit: str
    lo: float
    hi: float


VARIABLES = {
    "ssm": Variable("ssm", "soil moisture", "m3/m3", -0.02, 1.0),
    "lst": Variable("lst", "land surface temperature", "K", 150.0, 400.0),
    "ndvi": Variable("ndvi", "NDVI", "unitless, -1..1", -1.0, 1.0),
    "albedo": Variable("albedo", "albedo", "unitless, 0..1", 0.0, 1.0),
    "dem": Variable("dem", "elevation", "m", -500.0, 9000.0),
    "lst_diff": Variable("lst_diff", "day-night LST difference", "K", -60.0, 90.0),
    "background": Variable("background", "background LST", "K", 150.0, 400.0),
}


@dataclass
class Sample:
    """Sampled values of one file: ``values`` (finite, float64), the declared ``scale``,
    ``nodata`` and the raw data type name."""

    path: Path
    day: dt.date | None
    values: np.ndarray
    scale: float
    offset: float
    nodata: float | None
    dtype: str

    @property
    def where(self) -> str:
        return f"{self.path}" + (f" ({self.day})" if self.day else "")


def sample_windows(width: int, height: int, block_x: int, block_y: int, max_pixels: int = MAX_SAMPLE,
                   min_blocks: int = 16) -> list[tuple[int, int, int, int]] | None:
    """Whole storage blocks ``(x0, y0, nx, ny)`` to read for a sample of about
    ``2 max_pixels`` pixels spread evenly over a ``width x height`` raster stored in
    ``block_x x block_y`` blocks (tiles or strips), at least ``min_blocks`` of them; None
    when the raster has so few blocks that a decimated read of all of them costs no more.

    A decimated read of a compressed tiled raster still decodes every tile it touches,
    i.e. all of them: on a 5000 x 4000 px day that is the time of reading the whole day.
    Reading a spread subset of whole blocks decodes only those."""
    bx, by = max(1, min(int(block_x), width)), max(1, min(int(block_y), height))
    nbx, nby = math.ceil(width / bx), math.ceil(height / by)
    nblocks = nbx * nby
    k = max(min_blocks, math.ceil(2 * max_pixels / (bx * by)))
    if nblocks <= 2 * k:
        return None
    # a Fibonacci-like lattice: evenly spaced block rows, golden-ratio spaced columns
    j = np.arange(k) + 0.5
    rows = np.minimum((j / k * nby).astype(np.int64), nby - 1)
    cols = np.minimum((np.modf(j * 0.6180339887498949)[0] * nbx).astype(np.int64), nbx - 1)
    out = []
    for r, c in sorted(set(zip(rows.tolist(), cols.tolist()))):
        x0, y0 = c * bx, r * by
        out.append((x0, y0, min(bx, width - x0), min(by, height - y0)))
    return out


def read_sample(path: str | Path, day: dt.date | None = None, max_pixels: int = MAX_SAMPLE) -> Sample:
    """A sample of band 1 of ``path`` (exact values), nodata masked, scale applied: a
    decimated read of the whole raster, or for rasters of many storage blocks a spread
    subset of whole blocks (:func:`sample_windows`)."""
    from osgeo import gdal

    from .grid import open_raster

    ds = open_raster(path)
    b = ds.GetRasterBand(1)
    w, h = ds.RasterXSize, ds.RasterYSize
    try:
        windows = sample_windows(w, h, *b.GetBlockSize(), max_pixels)
        if windows is None:
            step = max(1, math.ceil(math.sqrt(w * h / max_pixels)))
            bw, bh = max(1, w // step), max(1, h // step)
            arr = b.ReadAsArray(0, 0, w, h, buf_xsize=bw, buf_ysize=bh, resample_alg=gdal.GRIORA_NearestNeighbour)
        else:
            parts = [b.ReadAsArray(x0, y0, nx, ny) for x0, y0, nx, ny in windows]
            arr = None if any(p is None for p in parts) else np.concatenate([p.ravel() for p in parts])
    except RuntimeError as exc:
        raise RasterReadError(f"{path}: its pixels cannot be read (a truncated or corrupt file?): {exc}") from exc
    if arr is None:  # pragma: no cover
        raise RasterReadError(f"{path}: its pixels cannot be read (a truncated or corrupt file?)")
    nodata = b.GetNoDataValue()
    scale = b.GetScale()
    offset = b.GetOffset()
    scale = 1.0 if scale in (None, 0) else float(scale)
    offset = 0.0 if offset is None else float(offset)
    a = arr.astype(np.float64).ravel()
    if nodata is not None and not math.isnan(nodata):
        a = a[a != np.float64(np.float32(nodata)) if arr.dtype.kind == "f" else a != nodata]
    a = a[np.isfinite(a)] * scale + offset
    dtype = gdal.GetDataTypeName(b.DataType)
    return Sample(Path(str(path)), day, a, scale, offset, nodata, dtype)


def check_readable(paths: Sequence[Path]) -> None:
    """Open every file (header only) and check that a GeoTIFF's last data block lies within
    the file: a truncated copy fails here, before the first day is computed, instead of
    after some days were written."""
    import os

    from .grid import open_raster

    for p in paths:
        ds = open_raster(p)
        if ds.GetDriver().ShortName != "GTiff":
            continue
        b = ds.GetRasterBand(1)
        bx, by = b.GetBlockSize()
        nx, ny = -(-ds.RasterXSize // max(bx, 1)), -(-ds.RasterYSize // max(by, 1))
        off = b.GetMetadataItem(f"BLOCK_OFFSET_{nx - 1}_{ny - 1}", "TIFF")
        size = b.GetMetadataItem(f"BLOCK_SIZE_{nx - 1}_{ny - 1}", "TIFF")
        ds = None
        if off and size and int(off) + int(size) > os.path.getsize(p):
            raise RasterReadError(f"{p}: the file is truncated (its data end at byte {int(off) + int(size)}, the file "
                                  f"has {os.path.getsize(p)} bytes): copy or download it again")


def undeclared_fill(values: np.ndarray, var: Variable) -> list[tuple[float, int]]:
    """Values outside the plausible range that repeat like a fill value: ``(value, count)``."""
    out_mask = (values < var.lo) | (values > var.hi)
    if not out_mask.any():
        return []
    u, c = np.unique(values[out_mask], return_counts=True)
    n = values.size
    cands = []
    for v, k in zip(u.tolist(), c.tolist()):
        known = any(v == f or (abs(f) > 1e10 and abs(v - f) <= 1e-6 * abs(f)) for f in FILL_CANDIDATES)
        if (known and k >= 2) or k >= max(5, 0.01 * n):
            cands.append((float(v), int(k)))
    if not cands:
        return []
    # a fill value sits apart from data that are otherwise plausible (else it is a unit problem)
    inner = values[~np.isin(values, [v for v, _ in cands])]
    if inner.size == 0 or ((inner >= var.lo) & (inner <= var.hi)).mean() < 0.9:
        return []
    fills = [(v, k) for v, k in cands if v < inner.min() or v > inner.max()]
    return sorted(fills, key=lambda t: -t[1])


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def check_sample(s: Sample, var: Variable, *, percent: bool = False, fix_option: str | None = None) -> np.ndarray:
    """Raise :class:`UnitError` when ``s`` holds an undeclared fill or is not in ``var``'s
    unit; returns its plausible values (fill removed; divided by 100 when ``percent``)."""
    v = s.values
    fills = undeclared_fill(v, var)
    if fills:
        listed = ", ".join(f"{_fmt(f)} on {k} of {v.size} sampled pixels" for f, k in fills[:3])
        f0 = _fmt(fills[0][0])
        raise UnitError(
            f"{s.where}: the {var.label} holds a fill value that is not declared as nodata ({listed}); "
            f"it would be used as data. Declare it as nodata for every file of the input "
            f"(e.g. gdal_edit.py -a_nodata {f0} <file>, or gdal_translate -a_nodata {f0}) and run again"
        )
    if v.size == 0:
        return v
    if var.key == "ssm" and percent:
        if float(np.nanmax(v)) <= 1.0:
            raise UnitError(
                f"{s.where}: the soil moisture was declared in percent, but its values are at most "
                f"{_fmt(float(np.nanmax(v)))}: they are already in m3/m3; untick the percent option"
            )
        v = v / 100.0
    p1, p50, p99 = (float(x) for x in np.percentile(v, [1, 50, 99]))
    vmin, vmax = float(v.min()), float(v.max())
    found = f"median {_fmt(p50)}, 1st-99th percentile {_fmt(p1)}..{_fmt(p99)}"
    hint = _unit_hint(s, var, p1, p50, p99, vmin, vmax, fix_option)
    if hint:
        raise UnitError(f"{s.where}: the {var.label} is not in {var.unit} ({found}): {hint}")
    outside = (v < var.lo) | (v > var.hi)
    if var.key == "dem":
        outside = v > var.hi
    if outside.mean() > 0.01:
        raise UnitError(
            f"{s.where}: {100 * outside.mean():.1f} % of the {var.label} values lie outside the plausible range "
            f"{_fmt(var.lo)}..{_fmt(var.hi)} {var.unit} ({found}); check the unit and the nodata value of the input"
        )
    return v


def _unit_hint(s: Sample, var: Variable, p1: float, p50: float, p99: float, vmin: float, vmax: float,
               fix_option: str | None) -> str | None:
    """The likely unit mistake and its fix, or None when the values look right."""
    k = var.key
    scaled = f" (the file declares a scale factor of {s.scale:g})" if s.scale != 1.0 else ""
    if s.scale > 1.0 and var.lo <= p1 / s.scale**2 and p99 / s.scale**2 <= var.hi:
        return (f"the file declares a scale factor of {s.scale:g} in the MODIS HDF4 way (value = stored / "
                f"{s.scale:g}), which GDAL applies as a product: set the scale to {1 / s.scale:g} first "
                f"(gdal_translate -a_scale {1 / s.scale:g} <subdataset> out.tif)")
    if k == "ssm":
        if p99 > 1.0 and vmax <= 100.0 and p50 > 1.0:
            opt = f", or set {fix_option} to convert it" if fix_option else ", or pass ssm_percent=True to convert it"
            return ("it looks like percent (volumetric %, 0-100); m3/m3 are expected: divide the values by 100 "
                    f"(e.g. gdal_calc.py -A <file> --calc=A/100){opt}")
        if p99 > 1.0 or p1 < -0.02:
            return f"values up to {_fmt(vmax)} cannot be soil moisture in m3/m3{scaled}; check the unit and scale"
        return None
    if k in ("lst", "background"):
        if var.lo <= p50 <= var.hi:
            return None
        if -80.0 <= p50 <= 80.0:
            return "it looks like degrees Celsius; kelvin are expected: add 273.15"
        if 7500.0 <= p50 <= 20000.0:
            return ("it looks like MODIS counts (MOD11A1 stores LST as integers with a scale factor of 0.02): "
                    "multiply by 0.02, or give the MOD11A1 HDF files directly")
        return f"kelvin are expected{scaled}; check the unit, the scale and the nodata value of the input"
    if k == "ndvi":
        if p99 > 1.5 and vmax <= 10000.0 and vmin >= -3000.0:
            return ("it looks like the MODIS integer scale (MOD13: -2000..10000 with a scale factor of 0.0001): "
                    "multiply by 0.0001, or declare the scale (gdal_edit.py -scale 0.0001 <file>)")
        if s.scale != 1.0 and max(abs(p1), abs(p99)) < 0.0105:
            return (f"the file declares a scale factor of {s.scale:g} but its values are already scaled, so they are "
                    "scaled twice: remove the scale (gdal_edit.py -scale 1 -offset 0 <file>)")
        if p99 > 1.0 or p1 < -1.0:
            return f"NDVI lies in -1..1{scaled}; check the unit, the scale and the nodata value of the input"
        return None
    if k == "albedo":
        if p99 > 1.0 and vmax <= 1000.0 and p50 > 1.0:
            return ("it looks like the MODIS integer scale (MCD43: 0..1000 with a scale factor of 0.001) or percent: "
                    "multiply by 0.001 (MODIS) or 0.01 (percent)")
        if s.scale != 1.0 and p99 < 0.0011:
            return (f"the file declares a scale factor of {s.scale:g} but its values are already scaled, so they are "
                    "scaled twice: remove the scale (gdal_edit.py -scale 1 -offset 0 <file>)")
        if p99 > 1.0 or p1 < 0.0:
            return f"albedo lies in 0..1{scaled}; check the unit, the scale and the nodata value of the input"
        return None
    if k == "dem":  # below -500 m is bathymetry (kept); above 9000 m is not metres
        if p99 > var.hi:
            return f"elevation in metres is expected{scaled}; check the unit, the scale and the nodata value"
        return None
    if k == "lst_diff":
        if p99 > var.hi or p1 < var.lo:
            return f"a day-night difference in kelvin is expected{scaled}; check the unit and the scale"
        return None
    return None


def _files_to_check(source, days: Sequence[dt.date] | None, n_days: int) -> list[tuple[Path, dt.date | None]]:
    """The first ``n_days`` files of ``source`` (a LayerSource, DailySeries or path) used on ``days``."""
    from .series import DailySeries, LayerSource

    if isinstance(source, (str, Path)):
        p = Path(source)
        source = LayerSource.open(p) if p.exists() else None
        if source is None:
            return []
    if isinstance(source, DailySeries):
        dates = [d for d in (days or source.dates) if d in source] or source.dates
        return [(source.files[d], d) for d in dates[:n_days]]
    if isinstance(source, LayerSource):
        if source.series is None:
            return [(source.path, None)]
        out: list[tuple[Path, dt.date | None]] = []
        for d in days or source.series.dates:
            fd = source.date_for(d)
            if fd is not None and all(fd != o for _, o in out):
                out.append((source.series.files[fd], fd))
            if len(out) >= n_days:
                break
        return out or [(source.series.files[source.series.start], source.series.start)]
    return []


def check_input(kind: str, source, days: Sequence[dt.date] | None = None, n_days: int = CHECK_DAYS, *,
                percent: bool = False, fix_option: str | None = None, label: str | None = None) -> None:
    """Check the first ``n_days`` files of one input (see the module docstring)."""
    var = VARIABLES[kind]
    if label:
        var = Variable(var.key, label, var.unit, var.lo, var.hi)
    from .lst.modis import is_mod11

    empty = []
    files = _files_to_check(source, days, n_days)
    for path, day in files:
        if kind in ("lst", "background") and is_mod11(path):
            continue  # read through the MOD11A1 reader (scale and QC applied)
        s = read_sample(path, day)
        v = check_sample(s, var, percent=percent, fix_option=fix_option)
        if v.size == 0:
            empty.append(s.where)
    if files and len(empty) == len(files):
        log.warning("The %s has no valid value in the first %d file(s) checked: %s", var.label, len(files),
                    "; ".join(empty))


def check_inputs(sources: Mapping[str, object], days: Sequence[dt.date] | None = None, n_days: int = CHECK_DAYS,
                 *, ssm_percent: bool = False, fix_option: str | None = None) -> None:
    """:func:`check_input` for each ``kind -> source`` (kinds without a rule are skipped)."""
    for kind, src in sources.items():
        if src is None or kind not in VARIABLES:
            continue
        check_input(kind, src, days, n_days, percent=ssm_percent and kind == "ssm",
                    fix_option=fix_option if kind == "ssm" else None)


__all__ = ["CHECK_DAYS", "VARIABLES", "UnitError", "Variable", "check_input", "check_inputs", "check_sample",
           "read_sample", "undeclared_fill"]
