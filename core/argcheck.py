"""Argument checks at the door of the core API: types and values are checked once, before
the first file is read, with messages naming the argument, the value and the fix.

- dates: a ``date``, a ``datetime`` or an ISO string (``"2019-06-03"``); None/"" = open;
- paths: ``str`` or ``os.PathLike``; a single path where a list of paths is expected is
  refused (it would be iterated character by character);
- names (predictors): a sequence of strings; a single string is refused;
- numbers: finite, within their range (``nan`` and text are refused).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import SsmError


class ArgumentError(SsmError, TypeError):
    """A core function was called with an argument of the wrong type or value."""


def as_date(value: Any, name: str) -> dt.date | None:
    """``value`` as a date (None/"" -> None); ISO strings and datetimes accepted."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ArgumentError(f"{name}={value!r} is not a date: give a datetime.date or an ISO string such as "
                                "'2019-06-03'") from None
    raise ArgumentError(f"{name} must be a datetime.date or an ISO date string such as '2019-06-03', "
                        f"got {type(value).__name__} {value!r}")


def date_range(start: Any, end: Any, names: tuple[str, str] = ("start", "end")) -> tuple[dt.date | None, dt.date | None]:
    """``(start, end)`` as dates, refused when ``end`` is before ``start``."""
    a, b = as_date(start, names[0]), as_date(end, names[1])
    if a is not None and b is not None and b < a:
        raise ArgumentError(f"The end date {b} is before the start date {a} ({names[1]} < {names[0]}); swap them")
    return a, b


def as_path(value: Any, name: str, optional: bool = False) -> Path | None:
    """``value`` (``str`` or path-like) as a ``Path``; None/"" allowed when ``optional``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise ArgumentError(f"{name}: a file or folder path is required")
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise ArgumentError(f"{name} must be a path (str or pathlib.Path), got {type(value).__name__} {value!r}")


def path_list(value: Any, name: str) -> dict[str, Path] | list[Path]:
    """A mapping ``name -> path`` or a list of paths; a single path is refused."""
    if isinstance(value, (str, os.PathLike)):
        raise ArgumentError(f"{name} expects a list of folders or a mapping name -> folder, got the single path "
                            f"{str(value)!r}: write [{str(value)!r}] (or {{'name': {str(value)!r}}})")
    if isinstance(value, Mapping):
        return {str(k): as_path(v, f"{name}[{k!r}]") for k, v in value.items()}
    try:
        items = list(value)
    except TypeError:
        raise ArgumentError(f"{name} expects a list of folders or a mapping name -> folder, "
                            f"got {type(value).__name__}") from None
    return [as_path(v, f"{name}[{i}]") for i, v in enumerate(items)]


def names(value: Any, name: str) -> tuple[str, ...]:
    """A sequence of names as a tuple; a single string is refused (it is not split)."""
    if isinstance(value, str):
        raise ArgumentError(f"{name} expects a sequence of names such as ('lst', 'ndvi', 'albedo'), got the string "
                            f"{value!r}: write ({value!r},)")
    try:
        out = tuple(value)
    except TypeError:
        raise ArgumentError(f"{name} expects a sequence of names, got {type(value).__name__}") from None
    bad = [v for v in out if not isinstance(v, str)]
    if bad:
        raise ArgumentError(f"{name} expects names (strings), got {bad[0]!r}")
    return out


def number(value: Any, name: str, lo: float | None = None, hi: float | None = None, *, integer: bool = False,
           optional: bool = False, hint: str = "") -> float | int | None:
    """A finite number within ``lo..hi`` (inclusive); ``nan``, text and booleans refused."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ArgumentError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ArgumentError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ArgumentError(f"{name} must be a finite number, got {value!r}{hint}")
    if integer and v != int(v):
        raise ArgumentError(f"{name} must be a whole number, got {value!r}")
    rng = f"{'' if lo is None else lo}..{'' if hi is None else hi}"
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ArgumentError(f"{name}={value!r} is outside its range {rng}{hint}")
    return int(v) if integer else v


def choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    """One of ``options``."""
    if value not in options:
        raise ArgumentError(f"{name}={value!r} is not one of {', '.join(options)}")
    return value


def check_downscale_args(args: Mapping[str, Any]) -> tuple[dt.date | None, dt.date | None]:
    """The door checks of :func:`~ssm_downscaling.core.downscale.run.downscale_series`
    (pass ``locals()`` first thing); returns the start and end dates."""
    for k in ("ssm_dir", "lst_dir", "ndvi", "albedo", "out_ssm", "out_flags"):
        as_path(args.get(k), k)
    for k in ("out_uncertainty", "dem", "lst_flags", "lst_diff", "reference", "coverage_csv"):
        as_path(args.get(k), k, optional=True)
    lst = args.get("lst_dir")
    if lst is not None and Path(lst).is_file():
        raise ArgumentError(f"lst_dir={str(lst)!r} is a single raster, but LST changes every day: give the folder of "
                            "daily all-weather LST (one file per day; a single day goes in a folder of its own)")
    choice(args.get("method", "gwr"), "method", ("gwr", "forest", "dispatch", "bilinear", "nearest"))
    choice(args.get("kernel", "gaussian"), "kernel", ("gaussian", "bisquare"))
    if args.get("residual") is not None:
        choice(args["residual"], "residual", ("filter", "coherent", "smooth", "interp", "cell", "none"))
    bw = args.get("bandwidth_km")
    if bw is not None:
        number(bw, "bandwidth_km", 0.0, hint=" (km; 0 or None = choose by AICc)")
    for k, lo, hi in (("pool_days", 0, 60), ("seam_days", 0, 366), ("n_trees", 1, 100_000), ("seed", 0, None),
                      ("n_jobs", -1, 1024), ("anomaly_days", 0, 60), ("ndvi_max_age", 0, 366),
                      ("albedo_max_age", 0, 366), ("block_pixels", 1, None)):
        if k in args:
            number(args[k], k, lo, hi, integer=True)
    noise = args.get("noise_sd")
    if noise is not None:
        number(noise, "noise_sd", 0.0, 0.5, hint=" (m3/m3; None = estimate from the data)")
    gain = args.get("anomaly_gain", "auto")
    if gain != "auto":
        number(gain, "anomaly_gain", 0.0, 2.0, hint=" (or 'auto')")
    rng = args.get("ssm_range", (0.01, 0.6))
    try:
        lo, hi = rng
    except (TypeError, ValueError):
        raise ArgumentError(f"ssm_range must be (min, max) in m3/m3, got {rng!r}") from None
    lo, hi = number(lo, "ssm_range[0]", 0.0, 1.0), number(hi, "ssm_range[1]", 0.0, 1.0)
    if not lo < hi:
        raise ArgumentError(f"ssm_range must have min < max, got {rng!r}")
    return date_range(args.get("start"), args.get("end"))


def check_gapfill_args(args: Mapping[str, Any]) -> tuple[dt.date | None, dt.date | None]:
    """The door checks of :func:`~ssm_downscaling.core.lst.gapfill.gapfill_series`."""
    for k in ("lst_dir", "out_lst_dir", "out_flag_dir"):
        as_path(args.get(k), k)
    for k in ("background_dir", "dem", "ndvi"):
        as_path(args.get(k), k, optional=True)
    opt = args.get("options")
    if opt is None:
        number(args.get("window", 15), "window", 1, 365, integer=True)
    return date_range(args.get("start"), args.get("end"))


def check_validate_args(args: Mapping[str, Any]) -> tuple[dt.date | None, dt.date | None]:
    """The door checks of :func:`~ssm_downscaling.core.validation.validate.validate_stations`."""
    path_list(args.get("products"), "products")
    from .validation.stations import StationSet

    if not isinstance(args.get("stations"), StationSet):
        as_path(args.get("stations"), "stations")
    as_path(args.get("flags"), "flags", optional=True)
    number(args.get("window", 1), "window", 1, 99, integer=True)
    if int(args.get("window", 1)) % 2 == 0:
        raise ArgumentError(f"window must be odd (1, 3, 5 ...), got {args.get('window')}")
    number(args.get("min_obs", 10), "min_obs", 3, None, integer=True)
    number(args.get("alpha", 0.05), "alpha", 1e-9, 0.5)
    return date_range(args.get("start"), args.get("end"))


__all__ = ["ArgumentError", "as_date", "as_path", "check_downscale_args", "check_gapfill_args",
           "check_validate_args", "choice", "date_range", "names", "number", "path_list"]
