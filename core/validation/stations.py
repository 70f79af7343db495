"""In-situ station soil moisture: a CSV table or an ISMN folder of ``.stm`` files.

Both readers return a :class:`StationSet`: one daily series per station (sub-daily values
averaged per calendar day, as the dates are written: UTC for ISMN), on a common daily axis.

**CSV** (DESIGN.md 3): a header row with the columns ``station_id, lon, lat, date, sm``
(names are case-insensitive; ``id``/``station``, ``longitude``, ``latitude``,
``datetime``/``time``, ``soil_moisture`` are accepted too), optional ``depth`` (m),
``network`` and ``flag`` (quality flag; a row is kept when it is empty or accepted);
other columns are ignored. Separator ``,`` ``;`` or tab. Dates ``YYYY-MM-DD``,
``YYYY/MM/DD`` or ``YYYYMMDD``, optionally followed by a time (``T`` or a space). Lon/lat
in WGS84 degrees, ``sm`` in m3/m3. Rows that cannot be read are skipped and reported with
their line numbers; an empty ``sm`` is a missing value.

**ISMN** (International Soil Moisture Network): a folder searched recursively for
``.stm`` files in either of the two layouts ISMN distributes: "CEOP-like" (every line
``date time date time network network station lat lon elev depth_from depth_to value
flag flag_orig``) and "header + values" (a first line ``network network station lat lon
elev depth_from depth_to sensor``, then ``date time value flag flag_orig``), with any line
endings (``\\n``, ``\\r\\n`` or a bare ``\\r``). Only soil moisture files (``_sm_`` in
the ISMN file name) within the depth range are read, and only values whose quality flags
are all accepted (default: ``G``, good).
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SsmError

log = logging.getLogger(__name__)

#: default sensor depth range (m): the 0-5 cm surface layer and sensors installed at 5-10 cm
DEFAULT_DEPTH = (0.0, 0.1)
#: default accepted quality flags (ISMN: G = good)
DEFAULT_FLAGS = ("G",)
#: how many bad lines are listed by name in a warning
MAX_LISTED = 10


class StationError(SsmError):
    """A station file that cannot be read, or no usable station in it."""


@dataclass
class StationSet:
    """Daily soil moisture of ``n`` stations on a common daily axis.

    values : float64 array ``(n, n_days)``, m3/m3, NaN where a day has no value; day ``j``
        is ``start + j days``.
    """

    ids: list[str]
    lon: np.ndarray
    lat: np.ndarray
    start: dt.date
    values: np.ndarray
    network: list[str] = field(default_factory=list)
    depth_from: np.ndarray | None = None
    depth_to: np.ndarray | None = None
    source: str = ""
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.ids)
        self.lon = np.asarray(self.lon, dtype=np.float64)
        self.lat = np.asarray(self.lat, dtype=np.float64)
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim != 2 or self.values.shape[0] != n or self.lon.shape != (n,) or self.lat.shape != (n,):
            raise ValueError("ids, lon, lat and values do not describe the same stations")
        if len(set(self.ids)) != n:
            raise ValueError("station ids must be unique")
        if not self.network:
            self.network = [""] * n
        if self.depth_from is None:
            self.depth_from = np.full(n, np.nan)
        if self.depth_to is None:
            self.depth_to = np.array(self.depth_from, dtype=np.float64)
        self.depth_from = np.asarray(self.depth_from, dtype=np.float64)
        self.depth_to = np.asarray(self.depth_to, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_days(self) -> int:
        return int(self.values.shape[1])

    @property
    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.n_days)]

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.n_days - 1)

    def date_index(self, day: dt.date) -> int:
        return (day - self.start).days

    def valid_range(self) -> tuple[dt.date, dt.date] | None:
        """First and last day with any value (None when there is no value at all)."""
        cols = np.flatnonzero(np.isfinite(self.values).any(axis=0))
        if cols.size == 0:
            return None
        return self.start + dt.timedelta(days=int(cols[0])), self.start + dt.timedelta(days=int(cols[-1]))

    def select(self, keep: np.ndarray) -> StationSet:
        """The stations where ``keep`` (bool array or indices) is set."""
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, dtype=np.int64)
        return StationSet(
            [self.ids[i] for i in idx],
            self.lon[idx],
            self.lat[idx],
            self.start,
            self.values[idx],
            [self.network[i] for i in idx],
            self.depth_from[idx],
            self.depth_to[idx],
            self.source,
            list(self.problems),
        )

    def on_axis(self, start: dt.date, n_days: int) -> np.ndarray:
        """The values on another daily axis ``start .. start + n_days - 1`` (NaN outside)."""
        out = np.full((len(self), n_days), np.nan)
        off = (self.start - start).days
        a, b = max(0, off), min(n_days, off + self.n_days)
        if b > a:
            out[:, a:b] = self.values[:, a - off : b - off]
        return out


# ---------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------

_DATE_RX = re.compile(r"^\s*(\d{4})[-/]?(\d{2})[-/]?(\d{2})(?:[T ].*)?\s*$")


def parse_date(text: str) -> dt.date:
    """A date from ``YYYY-MM-DD``, ``YYYY/MM/DD`` or ``YYYYMMDD``, optionally with a time."""
    m = _DATE_RX.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a date")
    return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def _accepts(flag: str, accepted: frozenset[str] | None) -> bool:
    """True when every part of a flag such as ``C02,D10`` is accepted (None: accept all)."""
    if accepted is None:
        return True
    parts = [p.strip().upper() for p in flag.split(",") if p.strip()]
    return bool(parts) and all(p in accepted for p in parts)


def _flag_set(quality_flags: Iterable[str] | str | None) -> frozenset[str] | None:
    if quality_flags is None:
        return None
    if isinstance(quality_flags, str):
        quality_flags = quality_flags.replace(";", ",").split(",")
    flags = frozenset(f.strip().upper() for f in quality_flags if f.strip())
    return flags or None


def _check_depth_range(depth_range: Sequence[float] | None) -> tuple[float, float] | None:
    if depth_range is None:
        return None
    lo, hi = (float(v) for v in depth_range)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        raise StationError(f"The depth range {lo}..{hi} m is not valid (need min <= max)")
    return lo, hi


def _in_depth(d0: np.ndarray, d1: np.ndarray, rng: tuple[float, float] | None) -> np.ndarray:
    """Sensors with both depths inside ``rng`` (tolerance 1e-6 m); unknown depths pass."""
    if rng is None:
        return np.ones(np.shape(d0), dtype=bool)
    lo, hi = rng
    known = np.isfinite(d0) & np.isfinite(d1)
    inside = (d0 >= lo - 1e-6) & (d1 <= hi + 1e-6)
    return ~known | inside


def _list_lines(what: str, items: list[tuple[int, str]]) -> str:
    shown = "; ".join(f"line {ln}: {msg}" for ln, msg in items[:MAX_LISTED])
    more = f"; and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return f"{what}: {len(items)} row(s) could not be read and were skipped ({shown}{more})"


def _daily_means(
    station_index: np.ndarray, days: np.ndarray, values: np.ndarray, n_stations: int
) -> tuple[dt.date, np.ndarray]:
    """Average values per (station, day); ``days`` are datetime64[D]. Returns (start, array)."""
    d0 = days.min()
    col = (days - d0).astype(np.int64)
    n_days = int(col.max()) + 1
    flat = station_index.astype(np.int64) * n_days + col
    sums = np.bincount(flat, weights=values, minlength=n_stations * n_days)
    counts = np.bincount(flat, minlength=n_stations * n_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums / counts).reshape(n_stations, n_days)
    return d0.astype(dt.date), mean


# ---------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------

_ALIASES = {
    "station_id": ("station_id", "station", "id", "stationid", "site"),
    "lon": ("lon", "longitude", "long", "lng"),
    "lat": ("lat", "latitude"),
    "date": ("date", "datetime", "date_time", "time", "timestamp"),
    "sm": ("sm", "soil_moisture", "ssm", "value"),
    "depth": ("depth", "depth_m"),
    "network": ("network",),
    "flag": ("flag", "quality_flag", "qflag"),
}
REQUIRED = ("station_id", "lon", "lat", "date", "sm")


def _columns(header: list[str], path: Path) -> dict[str, int]:
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    cols: dict[str, int] = {}
    for key, aliases in _ALIASES.items():
        for a in aliases:
            if a in names:
                cols[key] = names.index(a)
                break
    missing = [k for k in REQUIRED if k not in cols]
    if missing:
        raise StationError(
            f"{path}: the station table lacks the column(s) {', '.join(missing)} "
            f"(it has: {', '.join(h.strip() for h in header) or 'no header'}); "
            f"required are {', '.join(REQUIRED)}"
        )
    return cols


#: rows parsed per chunk (bounded memory for large tables)
CSV_CHUNK = 50_000
_EMPTY = ("", "nan", "na", "null", "none")


def _to_floats(strings: list[str]) -> tuple[np.ndarray, list[int]]:
    """Strings -> float64, NaN where a string is not a number; also the indices of those."""
    try:
        return np.array(strings, dtype=np.float64), []
    except ValueError:
        out = np.full(len(strings), np.nan)
        unparsed = []
        for i, s in enumerate(strings):
            try:
                out[i] = float(s)
            except ValueError:
                unparsed.append(i)
        return out, unparsed


def _floats(col: list[str], what: str, bad: dict[int, str], base: int, lo: float, hi: float,
            allow_empty: bool = False) -> np.ndarray:
    """Column strings -> float64 (NaN for empty when allowed); bad rows recorded by index."""
    out, unparsed = _to_floats(col)
    for i in unparsed:
        s = col[i]
        if not (allow_empty and s.strip().lower() in _EMPTY):
            bad.setdefault(base + i, f"{what} {s.strip()!r} is not a number")
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(out) & ((out < lo) | (out > hi))
    for i in np.flatnonzero(outside):
        bad.setdefault(base + int(i), f"{what} {col[i].strip()} is outside {lo:g}..{hi:g}")
    if not allow_empty:
        for i in np.flatnonzero(~np.isfinite(out)):
            bad.setdefault(base + int(i), f"{what} {col[i].strip()!r} is not a number")
    return out


def _cached_floats(col: list[str], cache: dict[str, float], what: str, bad: dict[int, str], base: int,
                   lo: float, hi: float, allow_empty: bool = False) -> np.ndarray:
    """Like :func:`_floats` for columns with few distinct strings (coordinates repeated on
    every row of a station): each distinct string is converted once."""
    get = cache.get
    out = [get(s) for s in col]
    if None in out:
        for i, v in enumerate(out):
            if v is None:
                v = get(col[i])
                if v is None:
                    try:
                        v = float(col[i])
                    except ValueError:
                        v = float("nan")
                    cache[col[i]] = v
                out[i] = v
    arr = np.array(out, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        wrong = ~np.isfinite(arr) | (arr < lo) | (arr > hi)
    for i in np.flatnonzero(wrong):
        if allow_empty and col[i].strip().lower() in _EMPTY:
            continue
        v = col[i].strip()
        bad.setdefault(base + int(i), f"{what} {v} is outside {lo:g}..{hi:g}" if np.isfinite(arr[i])
                       else f"{what} {v!r} is not a number")
    return arr


def _codes(col: list[str], table: dict[str, int]) -> np.ndarray:
    """Integer codes of strings, extending ``table`` (repeated values cost a dict lookup)."""
    get = table.get
    out = [get(s) for s in col]
    if None in out:
        for i, c in enumerate(out):
            if c is None:
                c = get(col[i])
                if c is None:
                    c = table[col[i]] = len(table)
                out[i] = c
    return np.array(out, dtype=np.int64)


_BAD_DAY = -(10**9)
#: station dates outside these years are typos (a one-digit year error builds a 7000-year axis)
_PLAUSIBLE_YEARS = (1900, dt.date.today().year + 1)
_PLAUSIBLE_DAYS = ((dt.date(_PLAUSIBLE_YEARS[0], 1, 1) - dt.date(1970, 1, 1)).days,
                   (dt.date(_PLAUSIBLE_YEARS[1], 12, 31) - dt.date(1970, 1, 1)).days)
#: share of values in 1..100 above which a soil moisture column is taken to be in percent
PERCENT_SHARE = 0.5


def _day_numbers(col: list[str], cache: dict[str, int], bad: dict[int, str], base: int) -> np.ndarray:
    """Days since 1970-01-01 of date strings (each distinct string parsed once)."""
    get = cache.get
    out = [get(s) for s in col]
    if None in out:
        epoch = dt.date(1970, 1, 1)
        for i, v in enumerate(out):
            if v is None:
                s = col[i]
                v = get(s)
                if v is None:
                    try:
                        v = (parse_date(s) - epoch).days
                    except ValueError:
                        v = _BAD_DAY
                    cache[s] = v
                out[i] = v
    arr = np.array(out, dtype=np.int64)
    for i in np.flatnonzero(arr == _BAD_DAY):
        bad.setdefault(base + int(i), f"{col[i].strip()!r} is not a date")
    lo, hi = _PLAUSIBLE_DAYS
    for i in np.flatnonzero((arr != _BAD_DAY) & ((arr < lo) | (arr > hi))):
        bad.setdefault(base + int(i), f"the date {col[i].strip()!r} is implausible (outside {_PLAUSIBLE_YEARS[0]}-"
                                      f"{_PLAUSIBLE_YEARS[1]}; a typo in the year?)")
    return arr


def _line_numbers(path: Path, delim: str, rows: list[int]) -> dict[int, int]:
    """Physical line numbers of data rows (0-based), for files with multi-line fields."""
    want = set(rows)
    out: dict[int, int] = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delim)
        next(reader)
        for k, _ in enumerate(reader):
            if k in want:
                out[k] = reader.line_num
    return out


def _refuse_percent(values: np.ndarray, where: str, what: str) -> None:
    """Raise when most finite values lie in 1..100: soil moisture in percent, not m3/m3."""
    v = values[np.isfinite(values)]
    if v.size < 3:
        return
    pct = (v > 1.0) & (v <= 100.0)
    if pct.mean() > PERCENT_SHARE:
        raise StationError(
            f"{where}: {what} looks like percent ({100 * pct.mean():.0f} % of the values lie in 1..100, median "
            f"{float(np.median(v)):g}); soil moisture in m3/m3 is expected: divide the values by 100"
        )


def _drop_duplicates(sel: np.ndarray, inv: np.ndarray, stamp: np.ndarray, sm: np.ndarray, uid: list[str],
                     where: str) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Rows with the same station and the same date/time: the first row is kept. Returns the
    kept rows, their station indices and a warning when the duplicates disagree."""
    if sel.size == 0:
        return sel, inv, None
    key = inv.astype(np.int64) * (int(stamp.max()) + 1 if stamp.size else 1) + stamp[sel].astype(np.int64)
    _, first_pos, back = np.unique(key, return_index=True, return_inverse=True)
    is_first = np.zeros(sel.size, dtype=bool)
    is_first[first_pos] = True
    if is_first.all():
        return sel, inv, None
    dup = ~is_first
    first_val = sm[sel[first_pos[back]]]
    conflict = dup & (np.abs(sm[sel] - first_val) > 1e-9)
    msg = None
    if conflict.any():
        ids = sorted({uid[k] for k in inv[conflict]})
        more = f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
        msg = (f"{where}: {int(conflict.sum())} duplicate row(s) give another soil moisture for the same station and "
               f"date/time than an earlier row (stations {', '.join(ids[:MAX_LISTED])}{more}); rule: the first row "
               "of each station and date/time is used, the later ones are ignored")
    return sel[is_first], inv[is_first], msg


def read_station_csv(
    path: str | Path,
    depth_range: Sequence[float] | None = DEFAULT_DEPTH,
    quality_flags: Iterable[str] | str | None = DEFAULT_FLAGS,
) -> StationSet:
    """Read a station CSV (see the module docstring) into daily means per station.

    The table is parsed in chunks of :data:`CSV_CHUNK` rows into numeric columns, so a
    table of millions of rows needs a few bytes per row, not Python objects per field.
    """
    path = Path(path)
    rng = _check_depth_range(depth_range)
    accepted = _flag_set(quality_flags)
    bad: dict[int, str] = {}  # data row index (0-based) -> problem
    id_codes: dict[str, int] = {}
    day_cache: dict[str, int] = {}
    flag_cache: dict[str, bool] = {}
    lon_cache: dict[str, float] = {}
    lat_cache: dict[str, float] = {}
    depth_cache: dict[str, float] = {}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("id", "lon", "lat", "day", "sm", "depth", "keep", "stamp")}
    stamp_codes: dict[str, int] = {}
    net_of: dict[int, str] = {}
    n_rows = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            head = fh.readline()
            if not head.strip():
                raise StationError(f"{path}: the file is empty (a header row {', '.join(REQUIRED)} is expected)")
            delim = max((",", ";", "\t"), key=head.count)
            fh.seek(0)
            reader = csv.reader(fh, delimiter=delim)
            header = next(reader)
            cols = _columns(header, path)
            ncol = max(cols.values()) + 1
            while True:
                chunk = list(itertools.islice(reader, CSV_CHUNK))
                if not chunk:
                    break
                base = n_rows
                n_rows += len(chunk)
                keep = np.ones(len(chunk), dtype=bool)
                for i, row in enumerate(chunk):
                    if len(row) < ncol:
                        keep[i] = False
                        if any(c.strip() for c in row):
                            bad[base + i] = f"only {len(row)} field(s)"
                        chunk[i] = [""] * ncol
                want = [k for k in cols if k != "network" and (k != "flag" or accepted is not None)]
                col = {k: [r[cols[k]] for r in chunk] for k in want}
                ids = _codes(col["station_id"], id_codes)
                parts["stamp"].append(_codes(col["date"], stamp_codes))
                lon = _cached_floats(col["lon"], lon_cache, "lon", bad, base, -180.0, 360.0)
                lat = _cached_floats(col["lat"], lat_cache, "lat", bad, base, -90.0, 90.0)
                sm = _floats(col["sm"], "sm", bad, base, 0.0, 1.0, allow_empty=True)
                day = _day_numbers(col["date"], day_cache, bad, base)
                depth = (_cached_floats(col["depth"], depth_cache, "depth", bad, base, -1e3, 1e3, allow_empty=True)
                         if "depth" in cols else np.full(len(chunk), np.nan))
                if "flag" in cols and accepted is not None:
                    for i, f in enumerate(col["flag"]):
                        ok = flag_cache.get(f)
                        if ok is None:
                            ok = flag_cache[f] = (not f.strip()) or _accepts(f, accepted)
                        keep[i] &= ok
                if "network" in cols:
                    uc, first_i = np.unique(ids, return_index=True)
                    for c, i in zip(uc.tolist(), first_i.tolist()):
                        if c not in net_of:
                            net_of[c] = chunk[i][cols["network"]].strip()
                keep &= np.isfinite(sm) & _in_depth(depth, depth, rng)
                for k, v in (("id", ids), ("lon", lon), ("lat", lat), ("day", day), ("sm", sm), ("depth", depth),
                             ("keep", keep)):
                    parts[k].append(v)
                del chunk, col  # free this chunk's strings before reading the next one
            line_count = reader.line_num
    except UnicodeDecodeError as exc:
        raise StationError(f"{path}: is not a text (UTF-8) file: {exc}") from exc
    except csv.Error as exc:
        raise StationError(f"{path}: cannot be read as CSV: {exc}") from exc
    except OSError as exc:
        raise StationError(f"{path}: cannot be read: {exc}") from exc

    cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
    keep = cat["keep"].astype(bool)
    _refuse_percent(cat["sm"], str(path), "the sm column")
    # empty station ids (after stripping) are bad rows; ids equal after stripping are one station
    names = [""] * len(id_codes)
    for raw, c in id_codes.items():
        names[c] = raw.strip()
    names_arr = np.array(names, dtype=object)
    if n_rows:
        for i in np.flatnonzero((names_arr[cat["id"].astype(np.int64)] == "") & keep):
            bad.setdefault(int(i), "empty station_id")
    if bad:
        keep[list(bad)] = False
    msgs: list[str] = []
    if bad:
        order = sorted(bad)
        lines = {k: k + 2 for k in order}  # header on line 1, one line per row
        if line_count != n_rows + 1:  # multi-line quoted fields: count physical lines
            lines = _line_numbers(path, delim, order[: MAX_LISTED + 1])
        msg = _list_lines(str(path), [(lines.get(k, k + 2), bad[k]) for k in order])
        log.warning(msg)
        msgs.append(msg)
    if not keep.any():
        why = "every row was skipped" if n_rows else "it has no data rows"
        detail = f" ({msgs[0]})" if msgs else ""
        raise StationError(f"{path}: no usable soil moisture value: {why}{detail}")

    sel = np.flatnonzero(keep)
    # raw id codes -> stations sorted by (stripped) name
    uid = sorted(set(names_arr[np.unique(cat["id"][sel].astype(np.int64))]))
    rank = {name: k for k, name in enumerate(uid)}
    remap = np.array([rank.get(name, -1) for name in names], dtype=np.int64)
    inv = remap[cat["id"][sel].astype(np.int64)]
    n = len(uid)
    order = np.argsort(inv, kind="stable")
    first = sel[order[np.searchsorted(inv[order], np.arange(n))]]
    st_lon, st_lat = cat["lon"][first], cat["lat"][first]
    moved = (np.abs(cat["lon"][sel] - st_lon[inv]) > 1e-4) | (np.abs(cat["lat"][sel] - st_lat[inv]) > 1e-4)
    if moved.any():
        ids_moved = sorted({str(uid[k]) for k in inv[moved]})
        msg = (
            f"{path}: station(s) {', '.join(ids_moved[:MAX_LISTED])}{' ...' if len(ids_moved) > MAX_LISTED else ''} "
            "have different coordinates on different rows; the first row's are used"
        )
        log.warning(msg)
        msgs.append(msg)
    sel, inv, dup_msg = _drop_duplicates(sel, inv, cat["stamp"], cat["sm"], uid, str(path))
    if dup_msg:
        log.warning(dup_msg)
        msgs.append(dup_msg)
    days = (np.datetime64("1970-01-01", "D") + cat["day"][sel].astype("timedelta64[D]"))
    start, values = _daily_means(inv, days, cat["sm"][sel], n)
    codes = cat["id"][first].astype(np.int64)
    network = [net_of.get(int(c), "") for c in codes]
    dep = cat["depth"][first]
    out = StationSet([str(u) for u in uid], st_lon, st_lat, start, values, network, dep, dep.copy(), str(path), msgs)
    log.info("%s: %d station(s), %d daily values from %s to %s", path.name, n, int(np.isfinite(values).sum()),
             out.start, out.end)
    return out


# ---------------------------------------------------------------------------------------
# ISMN
# ---------------------------------------------------------------------------------------

#: ``<network>_<network>_<station>_<variable>_<depth_from>_<depth_to>_<sensor>_<start>_<end>.stm``
_ISMN_NAME = re.compile(
    r"^(?P<net>.+?)_(?P=net)_(?P<station>.+)_(?P<var>[a-z]+(?:_[a-z]+)*)_"
    r"(?P<d0>-?\d+\.\d+)_(?P<d1>-?\d+\.\d+)_(?P<sensor>.+)_(?P<t0>\d{8})_(?P<t1>\d{8})\.stm$",
    re.IGNORECASE,
)
_STM_DATE = re.compile(r"^\d{4}/\d{2}/\d{2}$")
_SM_VARIABLES = ("sm", "soil_moisture")


@dataclass
class StmSeries:
    """One ``.stm`` file: a sensor's values (all flags) and its metadata."""

    path: Path
    network: str
    station: str
    sensor: str
    lat: float
    lon: float
    depth_from: float
    depth_to: float
    days: np.ndarray  # datetime64[D] per value
    values: np.ndarray  # float64
    flags: list[str]
    bad_lines: list[tuple[int, str]]


def parse_ismn_name(name: str) -> dict[str, str] | None:
    """Network, station, variable, depths and sensor from an ISMN file name (None if not one)."""
    m = _ISMN_NAME.match(name)
    return m.groupdict() if m else None


def read_stm(path: str | Path) -> StmSeries:
    """Read one ISMN ``.stm`` file of either layout (any line endings)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StationError(f"{path}: cannot be read: {exc}") from exc
    if b"\x00" in raw[:4096]:
        raise StationError(f"{path}: is not an ISMN .stm text file (binary content)")
    text = raw.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise StationError(f"{path}: is empty")
    tok0 = lines[first].split()
    meta = parse_ismn_name(path.name) or {}
    bad: list[tuple[int, str]] = []
    days: list[str] = []
    vals: list[str] = []
    flags: list[str] = []
    lnos: list[int] = []
    if _STM_DATE.match(tok0[0]):  # CEOP-like: every line is a full record
        if len(tok0) < 14:
            raise StationError(f"{path}: line {first + 1} is not an ISMN record ({len(tok0)} fields, 15 expected)")
        try:
            lat, lon = float(tok0[-8]), float(tok0[-7])
            d0, d1 = float(tok0[-5]), float(tok0[-4])
        except ValueError as exc:
            raise StationError(f"{path}: line {first + 1}: cannot read the coordinates/depths ({exc})") from exc
        network, station = tok0[4], " ".join(tok0[6:-8])
        sensor = meta.get("sensor", "")
        for i in range(first, len(lines)):
            t = lines[i].split()
            if not t:
                continue
            if len(t) < 14:
                bad.append((i + 1, f"{len(t)} field(s), 15 expected"))
                continue
            days.append(t[0])
            vals.append(t[-3])
            flags.append(t[-2])
            lnos.append(i + 1)
    else:  # header + values
        if len(tok0) < 8:
            raise StationError(f"{path}: the first line is not an ISMN header or record: {lines[first][:80]!r}")
        try:
            lat, lon = float(tok0[3]), float(tok0[4])
            d0, d1 = float(tok0[6]), float(tok0[7])
        except ValueError as exc:
            raise StationError(f"{path}: the header line cannot be read ({exc}): {lines[first][:80]!r}") from exc
        network, station, sensor = tok0[0], tok0[2], meta.get("sensor", " ".join(tok0[8:]))
        for i in range(first + 1, len(lines)):
            t = lines[i].split()
            if not t:
                continue
            if len(t) < 4:
                bad.append((i + 1, f"{len(t)} field(s), 5 expected"))
                continue
            days.append(t[0])
            vals.append(t[2])
            flags.append(t[3])
            lnos.append(i + 1)
    if meta:
        network, station = meta["net"], meta["station"]
        d0, d1 = float(meta["d0"]), float(meta["d1"])  # the file name has more digits
    n_lines = len(days) + len(bad)
    v, unparsed = _to_floats(vals)
    for k in unparsed:
        bad.append((lnos[k], f"value {vals[k]!r} is not a number"))
    try:
        d = np.array([s.replace("/", "-") for s in days], dtype="datetime64[D]")
    except ValueError:
        d = np.zeros(len(days), dtype="datetime64[D]")
        for k, s in enumerate(days):
            try:
                d[k] = np.datetime64(parse_date(s), "D")
            except ValueError:
                v[k] = np.nan
                bad.append((lnos[k], f"{s!r} is not a date"))
    bad.sort()
    if n_lines and len(bad) > 0.5 * n_lines:
        raise StationError(
            f"{path}: is not a readable ISMN .stm file ({len(bad)} of {n_lines} lines cannot be read, "
            f"first: line {bad[0][0]}: {bad[0][1]})"
        )
    if not np.isfinite(lat) or not np.isfinite(lon) or not (-90 <= lat <= 90):
        raise StationError(f"{path}: invalid station coordinates {lat}, {lon}")
    return StmSeries(path, network, station, sensor, lat, lon, d0, d1, d, v, flags, bad)


def read_ismn(
    folder: str | Path,
    depth_range: Sequence[float] | None = DEFAULT_DEPTH,
    quality_flags: Iterable[str] | str | None = DEFAULT_FLAGS,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> StationSet:
    """Read the soil moisture ``.stm`` files under ``folder`` (recursively) into daily means.

    Each sensor within ``depth_range`` (m; both its depths inside) becomes a station with
    id ``NETWORK:Station``, or ``NETWORK:Station:sensor`` when a station has several such
    sensors. Values whose flags are not all in ``quality_flags`` (None: keep all) are
    dropped; negative values and values above 1 m3/m3 too. ``start``/``end`` limit the
    days kept. Files that cannot be read are skipped with a warning naming them.
    """
    folder = Path(folder)
    rng = _check_depth_range(depth_range)
    accepted = _flag_set(quality_flags)
    if folder.is_file():
        files = [folder]
    elif folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".stm" and p.is_file())
    else:
        raise StationError(f"{folder}: no such file or folder")
    if not files:
        raise StationError(f"{folder}: contains no ISMN .stm file")
    msgs: list[str] = []
    series: list[StmSeries] = []
    skipped_depth: list[str] = []
    for p in files:
        meta = parse_ismn_name(p.name)
        if meta is not None and meta["var"].lower() not in _SM_VARIABLES:
            continue  # another variable (soil temperature, precipitation ...)
        if meta is not None and not _in_depth(np.array(float(meta["d0"])), np.array(float(meta["d1"])), rng):
            skipped_depth.append(f"{meta['net']}:{meta['station']} ({meta['d0']}-{meta['d1']} m)")
            continue
        try:
            s = read_stm(p)
        except StationError as exc:
            log.warning("%s (skipped)", exc)
            msgs.append(f"{exc} (skipped)")
            continue
        if not _in_depth(np.array(s.depth_from), np.array(s.depth_to), rng):
            skipped_depth.append(f"{s.network}:{s.station} ({s.depth_from:g}-{s.depth_to:g} m)")
            continue
        if s.bad_lines:
            m = _list_lines(str(p), s.bad_lines)
            log.warning(m)
            msgs.append(m)
        series.append(s)
    if skipped_depth:
        lo, hi = rng if rng else (float("nan"), float("nan"))
        log.info("Sensors outside the depth range %g-%g m were left out: %s", lo, hi, ", ".join(skipped_depth))
    if not series:
        why = "; ".join(msgs) if msgs else f"no soil moisture sensor within {rng[0]:g}-{rng[1]:g} m" if rng else ""
        raise StationError(f"{folder}: no readable soil moisture .stm file ({why})")

    # ids: NETWORK:Station, plus the sensor when a station has several in the depth range
    base = [f"{s.network}:{s.station}" for s in series]
    ids = [f"{b}:{s.sensor}" if base.count(b) > 1 else b for b, s in zip(base, series)]
    seen: dict[str, int] = {}
    for i, sid in enumerate(ids):  # several files of one sensor (periods): make unique
        if sid in seen:
            seen[sid] += 1
            ids[i] = f"{sid}#{seen[sid]}"
        else:
            seen[sid] = 1

    st_idx, all_days, all_vals = [], [], []
    no_good: list[str] = []
    lo_day = np.datetime64(start, "D") if start else None
    hi_day = np.datetime64(end, "D") if end else None
    in_percent: list[str] = []
    for k, s in enumerate(series):
        fin = s.values[np.isfinite(s.values)]
        if fin.size >= 3 and ((fin > 1.0) & (fin <= 100.0)).mean() > PERCENT_SHARE:
            in_percent.append(f"{ids[k]} ({s.path.name}: median {float(np.median(fin)):g})")
            continue
        ok = np.isfinite(s.values) & (s.values >= 0.0) & (s.values <= 1.0)
        if accepted is not None:
            ok &= np.array([_accepts(f, accepted) for f in s.flags], dtype=bool)
        if lo_day is not None:
            ok &= s.days >= lo_day
        if hi_day is not None:
            ok &= s.days <= hi_day
        if not ok.any():
            found = sorted({p for f in s.flags for p in f.split(",")})
            no_good.append(f"{ids[k]} (flags found: {', '.join(found[:8])})")
            continue
        st_idx.append(np.full(int(ok.sum()), k))
        all_days.append(s.days[ok])
        all_vals.append(s.values[ok])
    reason = ""
    if in_percent:
        pm = (f"values look like percent, not m3/m3 (divide them by 100), at: {'; '.join(in_percent[:MAX_LISTED])}"
              f"{' ...' if len(in_percent) > MAX_LISTED else ''}")
        if not st_idx:
            raise StationError(f"{folder}: no usable soil moisture value: {pm}")
        log.warning("%s: %s (left out)", folder, pm)
        msgs.append(f"{folder}: {pm} (left out)")
    if no_good:
        reason = (
            f"no value with an accepted quality flag ({', '.join(sorted(accepted)) if accepted else 'any'})"
            f"{' in the date range' if (start or end) else ''} at: {'; '.join(no_good)}"
        )
        if st_idx:
            log.warning("%s: %s", folder, reason)
            msgs.append(f"{folder}: {reason}")
    if not st_idx:
        hint = " (accept more quality flags, e.g. G,U, to use values ISMN did not mark as good)" if accepted else ""
        raise StationError(f"{folder}: no usable soil moisture value: {reason}{hint}")
    used = sorted({int(a[0]) for a in st_idx})
    remap = -np.ones(len(series), dtype=np.int64)
    remap[used] = np.arange(len(used))
    inv = remap[np.concatenate(st_idx)]
    start_day, values = _daily_means(inv, np.concatenate(all_days), np.concatenate(all_vals), len(used))
    sel = [series[i] for i in used]
    out = StationSet(
        [ids[i] for i in used],
        np.array([s.lon for s in sel]),
        np.array([s.lat for s in sel]),
        start_day,
        values,
        [s.network for s in sel],
        np.array([s.depth_from for s in sel]),
        np.array([s.depth_to for s in sel]),
        str(folder),
        msgs,
    )
    log.info("%s: %d sensor(s) from %d .stm file(s), %s to %s", folder.name, len(out), len(files), out.start, out.end)
    return out


def read_stations(
    path: str | Path,
    depth_range: Sequence[float] | None = DEFAULT_DEPTH,
    quality_flags: Iterable[str] | str | None = DEFAULT_FLAGS,
) -> StationSet:
    """A station CSV file, or an ISMN folder (or single ``.stm`` file)."""
    p = Path(path)
    if p.is_dir() or p.suffix.lower() == ".stm":
        return read_ismn(p, depth_range, quality_flags)
    if not p.exists():
        raise StationError(f"{p}: no such file or folder")
    return read_station_csv(p, depth_range, quality_flags)
