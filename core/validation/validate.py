"""The whole validation: read stations, sample each product at them, compare, check.

>>> result = validate_stations({"1 km": "out/ssm", "coarse": "inputs/ssm_coarse"},
...                            "stations.csv", flags="out/ssm_flags", min_obs=10)
>>> result.comparison.average("1 km", "all")["urmsd"]
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..argcheck import ArgumentError, check_validate_args
from ..errors import SsmError
from ..outputs import Output, guard_outputs
from ..preflight import validation_inputs
from ..progress import CancelFn, Progress, ProgressFn
from ..series import DailySeries
from .compare import Comparison, compare_products, long_rows
from .extract import sample_series
from .matching import FLAG_KINDS, detect_flag_kind, sky_condition
from .metrics import ALL_KEYS
from .stations import DEFAULT_DEPTH, DEFAULT_FLAGS, MAX_LISTED, StationSet, read_stations

log = logging.getLogger(__name__)


class ValidationError(SsmError):
    """Nothing can be validated (no station, no common date, too few matched days)."""


@dataclass
class ValidationResult:
    """Everything a report needs: stations, daily matched values, metrics, warnings.

    reference : float64 ``(n, n_days)`` station daily means on the axis ``dates``
    products[name] : float64 ``(n, n_days)`` product values at the stations
    condition : int8 ``(n, n_days)`` sky condition (0 clear, 1 cloudy, -1 unknown) or None
    """

    stations: StationSet
    dates: list[dt.date]
    reference: np.ndarray
    products: dict[str, np.ndarray]
    folders: dict[str, str]
    condition: np.ndarray | None
    flag_kind: str | None
    comparison: Comparison
    warnings: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def product_names(self) -> list[str]:
        return list(self.products)

    @property
    def main(self) -> str:
        """The first product (the layer is styled by its ubRMSD)."""
        return self.product_names[0]

    def rows(self) -> list[dict]:
        """Tidy per-station rows (station, product, subset, every metric) plus coordinates."""
        st = self.stations
        pos = {sid: i for i, sid in enumerate(st.ids)}
        out = []
        for r in long_rows(self.comparison, st.ids):
            i = pos[r["station_id"]]
            out.append(
                {
                    "station_id": r["station_id"],
                    "network": st.network[i],
                    "lon": float(st.lon[i]),
                    "lat": float(st.lat[i]),
                    "depth_from": float(st.depth_from[i]),
                    "depth_to": float(st.depth_to[i]),
                    **{k: v for k, v in r.items() if k != "station_id"},
                }
            )
        return out


def _product_names(products: Mapping[str, str | Path] | Sequence[str | Path]) -> dict[str, Path]:
    if isinstance(products, Mapping):
        items = [(str(k).strip() or Path(v).name, Path(v)) for k, v in products.items()]
    else:
        items = [(Path(p).name or str(p), Path(p)) for p in products]
    if not items:
        raise ValidationError("No product to validate was given")
    out: dict[str, Path] = {}
    for name, path in items:
        base, k = name, 2
        while name in out:
            name = f"{base} ({k})"
            k += 1
        out[name] = path
    return out


def _ids(ids: Iterable[str]) -> str:
    ids = list(ids)
    more = f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
    return ", ".join(ids[:MAX_LISTED]) + more


def _why_unmatched(reference: np.ndarray, values: Mapping[str, np.ndarray], ids: Sequence[str],
                   few: np.ndarray) -> dict[str, str]:
    """Why stations with too few matched days have them: the product never has a value at
    the station's pixel, or never on the station's days."""
    out = {}
    for i in np.flatnonzero(few):
        reasons = []
        for name, v in values.items():
            has = np.isfinite(v[i])
            if not has.any():
                reasons.append(f"{name!r} has no value at its pixel on any day (water, nodata or never observed)")
            elif not (has & np.isfinite(reference[i])).any():
                reasons.append(f"{name!r} has values there, never on the station's days")
        if reasons:
            out[str(ids[i])] = ": " + "; ".join(reasons)
    return out


def validate_stations(
    products: Mapping[str, str | Path] | Sequence[str | Path],
    stations: str | Path | StationSet,
    *,
    flags: str | Path | None = None,
    flag_kind: str = "auto",
    start: dt.date | None = None,
    end: dt.date | None = None,
    window: int = 1,
    min_obs: int = 10,
    common_days: bool = True,
    depth_range: Sequence[float] | None = DEFAULT_DEPTH,
    quality_flags: Iterable[str] | str | None = DEFAULT_FLAGS,
    alpha: float = 0.05,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
) -> ValidationResult:
    """Validate daily product series (folders) against station soil moisture.

    ``products`` maps a name to a series folder (a list of folders uses their names); the
    first is the main product. ``stations`` is a CSV, an ISMN folder or a
    :class:`StationSet`. ``flags`` is an optional flag series (SSM flags, LST flags or a
    cloud mask, ``flag_kind`` ``auto``/``ssm``/``lst``) read at the stations to split
    clear-sky and cloudy days. ``start``/``end`` limit the dates; ``window`` is the odd side
    of the pixel window averaged at each station; a station enters the averages with at
    least ``min_obs`` matched days. Stations outside every raster or without matched days
    are reported as warnings with their ids; :class:`ValidationError` when no station can
    be validated.
    """
    try:
        start, end = check_validate_args(locals())
    except ArgumentError as exc:
        raise ValidationError(str(exc)) from None
    if int(min_obs) < 3:
        raise ValidationError(f"min_obs must be at least 3 (R and its p-value need 3 pairs), got {min_obs}")
    if flag_kind not in FLAG_KINDS:
        raise ValidationError(f"Unknown flag kind {flag_kind!r}; choose from {', '.join(FLAG_KINDS)}")
    if start is not None and end is not None and end < start:
        raise ValidationError(f"The end date {end} is before the start date {start}")
    named = _product_names(products)
    prog = Progress(100.0, progress, is_cancelled)
    warnings: list[str] = []

    def warn(msg: str) -> None:
        log.warning(msg)
        warnings.append(msg)

    # stations --------------------------------------------------------------------------
    st = stations if isinstance(stations, StationSet) else read_stations(stations, depth_range, quality_flags)
    warnings.extend(st.problems)
    prog.advance(5)
    series = {name: DailySeries.from_folder(path) for name, path in named.items()}
    flag_series = DailySeries.from_folder(flags) if flags else None

    # the date axis: stations' valid days within [start, end] and within the products' span
    vr = st.valid_range()
    if vr is None:
        raise ValidationError(f"{st.source}: no station value")
    a, b = vr
    if start is not None:
        a = max(a, start)
    if end is not None:
        b = min(b, end)
    if b < a:
        raise ValidationError(
            f"No station value between {start or '...'} and {end or '...'} (the stations cover {vr[0]} to {vr[1]})"
        )
    for name, s in series.items():
        if not any(a <= d <= b for d in s.dates):
            raise ValidationError(
                f"No dates in common: product {name!r} ({s.folder}) covers {s.start} to {s.end}, "
                f"the stations {a} to {b}"
            )
    a = max(a, min(s.start for s in series.values()))
    b = min(b, max(s.end for s in series.values()))
    n_days = (b - a).days + 1
    dates = [a + dt.timedelta(days=i) for i in range(n_days)]
    reference = st.on_axis(a, n_days)

    # stations without any value in the period
    has_ref = np.isfinite(reference).any(axis=1)
    if not has_ref.all():
        warn(f"{int((~has_ref).sum())} station(s) have no value between {a} and {b} and were left out: "
             f"{_ids(np.array(st.ids)[~has_ref])}")
        st = st.select(has_ref)
        reference = reference[has_ref]
    if len(st) == 0:
        raise ValidationError(f"No station has a value between {a} and {b}")

    # sample every product (and the flags) at the stations ----------------------------------
    n_series = len(series) + (1 if flag_series else 0)
    share = 85.0 / n_series
    values: dict[str, np.ndarray] = {}
    inside: dict[str, np.ndarray] = {}
    for name, s in series.items():
        log.info("Reading %s at %d station(s), %d day(s)", name, len(st), n_days)
        ps = sample_series(s, st.lon, st.lat, dates, window, progress=prog.sub(share, max(len(s), 1)))
        values[name], inside[name] = ps.values, ps.inside
    condition = None
    kind = None
    if flag_series is not None:
        ps = sample_series(flag_series, st.lon, st.lat, dates, 1, progress=prog.sub(share, max(len(flag_series), 1)))
        kind = detect_flag_kind(flag_series, ps.values) if flag_kind == "auto" else flag_kind
        condition = sky_condition(ps.values, kind)
        del ps  # the flag values: only the int8 condition is kept
        matched = np.isfinite(reference) & np.logical_and.reduce([np.isfinite(v) for v in values.values()])
        log.info("Sky condition from %s (%s flags): %d clear and %d cloudy station-days with a station and product "
                 "value", flag_series.folder, kind, int(((condition == 0) & matched).sum()),
                 int(((condition == 1) & matched).sum()))

    # stations outside the rasters
    in_any = np.zeros(len(st), dtype=bool)
    for ins in inside.values():
        in_any |= ins
    if not in_any.any():
        raise ValidationError(
            f"Every station lies outside the rasters of {', '.join(repr(n) for n in series)} "
            f"(stations span lon {st.lon.min():.3f}..{st.lon.max():.3f}, lat {st.lat.min():.3f}..{st.lat.max():.3f})"
        )
    if not in_any.all():
        warn(f"{int((~in_any).sum())} station(s) lie outside every product raster and were left out: "
             f"{_ids(np.array(st.ids)[~in_any])}")
    for name, ins in inside.items():
        part = in_any & ~ins
        if part.any():
            warn(f"{int(part.sum())} station(s) lie outside the rasters of {name!r}"
                 f"{' (so they have no common day with the other products)' if common_days and len(series) > 1 else ''}: "
                 f"{_ids(np.array(st.ids)[part])}")
    keep = in_any
    if not keep.all():  # (copies of (n, n_days) arrays: only when a station goes)
        st = st.select(keep)
        reference = reference[keep]
        for k in list(values):
            values[k] = values[k][keep]
        if condition is not None:
            condition = condition[keep]

    # metrics -------------------------------------------------------------------------------
    prog.check()
    comp = compare_products(reference, values, condition, min_obs, alpha, common_days)
    main = next(iter(series))
    n_obs = {p: comp.metrics(p)["n_obs"] for p in comp.products}
    best = np.max(np.stack([n_obs[p] for p in comp.products]), axis=0)
    few = best < min_obs
    if few.all():
        detail = ", ".join(f"{sid} ({n})" for sid, n in zip(st.ids[:MAX_LISTED], best[:MAX_LISTED]))
        what = "days that all products and the station have" if common_days and len(series) > 1 else "matched days"
        raise ValidationError(
            f"No station has at least min_obs={min_obs} {what} between {a} and {b}: "
            f"station (days): {detail}{' ...' if len(st) > MAX_LISTED else ''}"
        )
    if few.any():
        why = _why_unmatched(reference, values, st.ids, few)
        warn(f"{int(few.sum())} station(s) have fewer than min_obs={min_obs} matched days and enter no average: "
             + _ids(f"{sid} ({n}{why.get(sid, '')})" for sid, n in zip(np.array(st.ids)[few], best[few])))
    for sub in comp.subsets:
        if sub == "all":
            continue
        for p in comp.products:
            n_all, n_sub = int(comp.validated(p).sum()), int(comp.validated(p, sub).sum())
            if n_sub < n_all:
                warn(f"{p}: the {'clear-sky' if sub == 'clear' else sub} station average uses {n_sub} of the {n_all} "
                     f"validated station(s) (the others have fewer than min_obs={min_obs} {sub} days); compare it with "
                     "the other averages with that in mind")
    prog.finish()
    ok = comp.validated(main)
    log.info("%s: %d of %d station(s) validated; station-mean ubRMSD %.4f m3/m3", main, int(ok.sum()), len(st),
             comp.average(main)["urmsd"])
    settings = {
        "start": a.isoformat(),
        "end": b.isoformat(),
        "window": int(window),
        "min_obs": int(min_obs),
        "common_days": bool(common_days),
        "depth_range": list(depth_range) if depth_range is not None else None,
        "quality_flags": quality_flags if isinstance(quality_flags, str) or quality_flags is None
        else ",".join(quality_flags),
        "stations": st.source,
        "flags": str(flags) if flags else None,
        "alpha": float(alpha),
    }
    return ValidationResult(st, dates, reference, values, {k: str(v) for k, v in named.items()}, condition, kind,
                            comp, warnings, settings)


# ---------------------------------------------------------------------------------------
# the CSV table
# ---------------------------------------------------------------------------------------

CSV_COLUMNS = ("station_id", "network", "lon", "lat", "depth_from", "depth_to", "product", "subset") + ALL_KEYS


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if not np.isfinite(v) else repr(v)
    return str(v)


def result_inputs(result: ValidationResult) -> list[tuple[str, object]]:
    """The inputs of a validation (products, stations, flags) for the output guards."""
    return validation_inputs(result.folders, result.settings.get("stations"), result.settings.get("flags"))


def write_metrics_csv(result: ValidationResult, path: str | Path) -> Path:
    """The per-station metrics as a tidy CSV (one row per station, product and subset),
    written atomically. Empty cells where a station has fewer than ``min_obs`` days."""
    path = Path(path)
    guard_outputs(result_inputs(result), [Output("metrics table", path)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(CSV_COLUMNS)
            for r in result.rows():
                w.writerow([_fmt(r[c]) for c in CSV_COLUMNS])
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


__all__ = ["CSV_COLUMNS", "ValidationError", "ValidationResult", "validate_stations", "write_metrics_csv"]
