"""In-situ station soil moisture: a CSV table or an ISMN folder of ``.stm`` files.

Both readers return a :class:`StationSet`: one daily series per station (sub-daily values
averaged per calendar day, as the dates are written: UTC for ISMN), on a common daily axis.

**CSV** (DESIGN.md 3): a header row with the columns ``station_id, lon, lat, date, sm``
(names are case-insensitive; ``id``/``station``, ``longitude``, ``latitude``,
``datetime``/``time``, ``soil_moisture`` are accepted too), optional ``depth`` (m),
``network`` and ``flag`` (quality flag; a row is kept when it is empty or accepted);
other columns are ignored. Separator ``,`` ``;`` or tab. Large tables (the 17-year archive
of 2,000 stations is 12 million rows) are read in chunks by pandas' C parser when pandas is
installed and the table is plain (no quotes, every line complete), otherwise by the csv
module; each distinct id, coordinate and date string is converted once. Dates ``YYYY-MM-DD``,
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
    """Average values per (station, day). ``days`` are datetime64[D] or integer day numbers
    since 1970-01-01, ``(n_values,)``. Returns (first day, float64 ``(n_stations, n_days)``)."""
    if days.dtype.kind == "M":
        days = days.astype("datetime64[D]").astype(np.int64)
    d0 = int(days.min())
    n_days = int(days.max()) - d0 + 1
    flat = station_index.astype(np.int64)  # -> station * n_days + day - d0, in place (one array)
    flat *= n_days
    flat += days
    flat -= d0
    sums = np.bincount(flat, weights=values, minlength=n_stations * n_days)
    counts = np.bincount(flat, minlength=n_stations * n_days)
    del flat
    with np.errstate(invalid="ignore", divide="ignore"):
        sums /= counts
    return (np.datetime64("1970-01-01", "D") + np.timedelta64(d0, "D")).astype(dt.date), sums.reshape(n_stations, n_days)


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
CSV_CHUNK = 250_000
_EMPTY = ("", "nan", "na", "null", "none")

try:  # pandas' C parser reads the table; the csv module is the fallback (pandas is optional)
    import pandas as _pd
except ImportError:  # pragma: no cover - depends on the installation
    _pd = None


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


def _factorize(col: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer codes ``(n,)`` of a string column and its distinct strings (each distinct
    string is then converted once: coordinates, dates and ids repeat on every row)."""
    if _pd is not None:
        codes, uniq = _pd.factorize(col)
        return np.asarray(codes, dtype=np.int64), list(uniq)
    # without pandas: dicts, iterated in C (sorting strings with np.unique is far slower)
    uniq = list(dict.fromkeys(col))
    index = {u: i for i, u in enumerate(uniq)}
    codes = np.fromiter(map(index.__getitem__, col), dtype=np.int64, count=len(col))
    return codes, uniq


def _column_floats(col: np.ndarray, what: str, bad: dict[int, str], base: int, lo: float, hi: float,
                   allow_empty: bool = False, nonfinite_ok: bool = False) -> np.ndarray:
    """A column of strings ``(n,)`` -> float64 ``(n,)``; rows that are not a number in
    ``lo..hi`` are recorded in ``bad`` (by ``base + index``). ``allow_empty``: empty/"nan"
    strings are missing values (NaN), not errors; ``nonfinite_ok``: so are "inf" and the like."""
    codes, uniq = _factorize(col)
    vals, unparsed = _to_floats(uniq)
    is_unparsed = np.zeros(len(uniq), dtype=bool)
    is_unparsed[unparsed] = True
    empty = np.array([u.strip().lower() in _EMPTY for u in uniq], dtype=bool)
    finite = np.isfinite(vals)
    with np.errstate(invalid="ignore"):
        outside = finite & ((vals < lo) | (vals > hi))
    if allow_empty:
        wrong = outside | (is_unparsed & ~empty)
        if not nonfinite_ok:
            wrong |= ~finite & ~empty
    else:
        wrong = outside | ~finite
    if wrong.any():
        for i in np.flatnonzero(wrong[codes]):
            k = int(codes[i])
            v = uniq[k].strip()
            bad.setdefault(base + int(i), f"{what} {v} is outside {lo:g}..{hi:g}" if outside[k]
                           else f"{what} {v!r} is not a number")
    return vals[codes]


def _column_codes(col: np.ndarray, table: dict[str, int]) -> np.ndarray:
    """Integer codes ``(n,)`` of strings, extending ``table`` (one entry per distinct string)."""
    codes, uniq = _factorize(col)
    get = table.get
    ucodes = np.empty(len(uniq), dtype=np.int64)
    for k, u in enumerate(uniq):
        c = get(u)
        if c is None:
            c = table[u] = len(table)
        ucodes[k] = c
    return ucodes[codes]


_BAD_DAY = -(10**9)
#: station dates outside these years are typos (a one-digit year error builds a 7000-year axis)
_PLAUSIBLE_YEARS = (1900, dt.date.today().year + 1)
_PLAUSIBLE_DAYS = ((dt.date(_PLAUSIBLE_YEARS[0], 1, 1) - dt.date(1970, 1, 1)).days,
                   (dt.date(_PLAUSIBLE_YEARS[1], 12, 31) - dt.date(1970, 1, 1)).days)
#: share of values in 1..100 above which a soil moisture column is taken to be in percent
PERCENT_SHARE = 0.5


def _column_days(col: np.ndarray, cache: dict[str, int], bad: dict[int, str], base: int,
                 factorized: tuple[np.ndarray, list[str]] | None = None) -> np.ndarray:
    """Days since 1970-01-01 ``(n,)`` int64 of date strings (each distinct string parsed once;
    ``factorized``: the column's codes and distinct strings when already known)."""
    codes, uniq = factorized if factorized is not None else _factorize(col)
    epoch = dt.date(1970, 1, 1)
    udays = np.empty(len(uniq), dtype=np.int64)
    for k, s in enumerate(uniq):
        v = cache.get(s)
        if v is None:
            try:
                v = (parse_date(s) - epoch).days
            except ValueError:
                v = _BAD_DAY
            cache[s] = v
        udays[k] = v
    arr = udays[codes]
    lo, hi = _PLAUSIBLE_DAYS
    wrong = (udays == _BAD_DAY) | (udays < lo) | (udays > hi)
    if wrong.any():
        for i in np.flatnonzero(wrong[codes]):
            s = uniq[int(codes[i])].strip()
            bad.setdefault(base + int(i), f"{s!r} is not a date" if arr[i] == _BAD_DAY else
                           f"the date {s!r} is implausible (outside {_PLAUSIBLE_YEARS[0]}-{_PLAUSIBLE_YEARS[1]}; "
                           "a typo in the year?)")
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
                     where: str, day: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Rows with the same station and the same date/time: the first row is kept. Returns the
    kept rows, their station indices and a warning when the duplicates disagree.

    ``day`` (day numbers of the rows, optional): when the rows run by station and then by
    strictly increasing day (the usual layout of a daily table), no two share a date/time,
    and the sort that finds duplicates is skipped."""
    if sel.size == 0:
        return sel, inv, None
    if day is not None:
        d = day[sel]
        same = inv[1:] == inv[:-1]
        if np.all((inv[1:] > inv[:-1]) | (same & (d[1:] > d[:-1]))):
            return sel, inv, None
        del d, same
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


def _plain_table(path: Path, delim: str, n_fields: int) -> bool:
    """True when the file has no quote character, no bare CR, and every line has exactly
    ``n_fields`` fields (``n_fields - 1`` delimiters, counted per line in 16 MB blocks):
    such a table is read by pandas' C parser with data row ``k`` on line ``k + 2``.
    Anything else (quoted fields, blank, short or long lines, CR line ends) goes through
    the csv module, which reports such rows by line."""
    want = n_fields - 1
    d = ord(delim)
    carry = 0  # delimiters since the last newline of the previous blocks
    last = b"\n"
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 24)
            if not block:
                break
            if b'"' in block or block.count(b"\r") != block.count(b"\r\n"):
                return False
            a = np.frombuffer(block, dtype=np.uint8)
            nl = np.flatnonzero(a == 10)
            dl = np.flatnonzero(a == d)
            if nl.size == 0:
                carry += dl.size
            else:
                before = np.searchsorted(dl, nl)  # delimiters before each newline in this block
                per = np.diff(before, prepend=0)
                per[0] += carry
                if (per != want).any():
                    return False
                carry = int(dl.size - before[-1])
            last = block[-1:]
    return carry == (want if last != b"\n" else 0)


def _chunks_pandas(path: Path, delim: str, n_fields: int, wanted: dict[str, int]):
    """Chunks of the table as ``{key: object array of strings}`` (pandas' C parser)."""
    idx = sorted(set(wanted.values()))
    reader = _pd.read_csv(path, sep=delim, header=None, skiprows=1, names=list(range(n_fields)), usecols=idx,
                          dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                          encoding="utf-8-sig", engine="c", chunksize=CSV_CHUNK)
    with reader:
        for df in reader:
            yield {k: df[i].to_numpy(dtype=object) for k, i in wanted.items()}, None


def _chunks_csv(reader, wanted: dict[str, int], bad: dict[int, str], counter: list[int]):
    """Chunks of the table from a csv reader; short rows are blanked (and reported unless
    empty). ``counter[0]`` counts the rows read."""
    ncol = max(wanted.values()) + 1
    while True:
        chunk = list(itertools.islice(reader, CSV_CHUNK))
        if not chunk:
            return
        base = counter[0]
        counter[0] += len(chunk)
        keep = np.ones(len(chunk), dtype=bool)
        for i, row in enumerate(chunk):
            if len(row) < ncol:
                keep[i] = False
                if any(c.strip() for c in row):
                    bad[base + i] = f"only {len(row)} field(s)"
                chunk[i] = [""] * ncol
        cols = {k: _object_array([r[j] for r in chunk]) for k, j in wanted.items()}
        del chunk
        yield cols, keep


def _object_array(values: Sequence[str]) -> np.ndarray:
    """A 1-D object array of strings (never a 2-D array of characters)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class _CsvState:
    """What the chunks of a station table add up to: the kept rows (station code, day,
    date-string code, value) and each station's first kept row (coordinates, depth)."""

    def __init__(self, rng: tuple[float, float] | None, accepted: frozenset[str] | None) -> None:
        self.rng, self.accepted = rng, accepted
        self.bad: dict[int, str] = {}
        self.id_codes: dict[str, int] = {}
        self.stamp_codes: dict[str, int] = {}
        self.day_cache: dict[str, int] = {}
        self.flag_cache: dict[str, bool] = {}
        self.net_of: dict[int, str] = {}
        self.name_of: dict[str, int] = {}  # stripped station id -> station code
        self.raw2name = np.zeros(0, dtype=np.int64)
        self.first: dict[str, list[float]] = {"lon": [], "lat": [], "depth": [], "raw": []}
        self.moved: list[bool] = []
        self.parts: dict[str, list[np.ndarray]] = {"name": [], "day": [], "stamp": [], "sm": []}
        self.sm_seen: list[np.ndarray] = []  # every finite value (float32), for the percent check
        self.n_finite = 0  # finite sm values, and those in 1..100 (percent?)
        self.n_percent = 0
        self.n_rows = 0

    def add(self, cols: dict[str, np.ndarray], pre_keep: np.ndarray | None) -> None:
        bad, base = self.bad, self.n_rows
        n = cols["station_id"].size
        self.n_rows += n
        keep = np.ones(n, dtype=bool) if pre_keep is None else pre_keep
        ids = _column_codes(cols["station_id"], self.id_codes)
        dcodes, duniq = _factorize(cols["date"])
        stamp = _column_codes(_object_array(duniq), self.stamp_codes)[dcodes]
        lon = _column_floats(cols["lon"], "lon", bad, base, -180.0, 360.0)
        lat = _column_floats(cols["lat"], "lat", bad, base, -90.0, 90.0)
        sm = _column_floats(cols["sm"], "sm", bad, base, 0.0, 1.0, allow_empty=True, nonfinite_ok=True)
        day = _column_days(cols["date"], self.day_cache, bad, base, (dcodes, duniq))
        depth = (_column_floats(cols["depth"], "depth", bad, base, -1e3, 1e3, allow_empty=True)
                 if "depth" in cols else np.full(n, np.nan))
        if "flag" in cols and self.accepted is not None:
            fcodes, funiq = _factorize(cols["flag"])
            ok = np.array([self.flag_cache.setdefault(f, (not f.strip()) or _accepts(f, self.accepted))
                           for f in funiq], dtype=bool)
            keep &= ok[fcodes]
        if "network" in cols:
            uc, first_i = np.unique(ids, return_index=True)
            net = cols["network"]
            for c, i in zip(uc.tolist(), first_i.tolist()):
                if c not in self.net_of:
                    self.net_of[c] = net[i].strip()
        fin = sm[np.isfinite(sm)]
        self.sm_seen.append(fin.astype(np.float32))
        self.n_percent += int(((fin > 1.0) & (fin <= 100.0)).sum())
        self.n_finite += int(fin.size)
        keep &= np.isfinite(sm) & _in_depth(depth, depth, self.rng)
        # station codes of the stripped ids (ids equal after stripping are one station)
        if len(self.id_codes) > self.raw2name.size:
            raws = sorted(self.id_codes.items(), key=lambda kv: kv[1])[self.raw2name.size:]
            ext = [self.name_of.setdefault(r.strip(), len(self.name_of)) for r, _ in raws]
            self.raw2name = np.concatenate([self.raw2name, np.array(ext, dtype=np.int64)])
        name = self.raw2name[ids]
        empty = self.name_of.get("")
        if empty is not None:
            for i in np.flatnonzero((name == empty) & keep):
                bad.setdefault(base + int(i), "empty station_id")
        for k in [k for k in bad if k >= base]:  # this chunk's bad rows
            keep[k - base] = False
        sel = np.flatnonzero(keep)
        if sel.size == 0:
            return
        nm = name[sel]
        grow = len(self.name_of) - len(self.moved)
        if grow > 0:
            for key in self.first:
                self.first[key].extend([np.nan] * grow)
            self.moved.extend([False] * grow)
        un, pos = np.unique(nm, return_index=True)
        for c, i in zip(un.tolist(), pos.tolist()):
            if np.isnan(self.first["raw"][c]):
                r = int(sel[i])
                self.first["lon"][c], self.first["lat"][c] = float(lon[r]), float(lat[r])
                self.first["depth"][c], self.first["raw"][c] = float(depth[r]), float(ids[r])
        f_lon, f_lat = np.array(self.first["lon"]), np.array(self.first["lat"])
        far = (np.abs(lon[sel] - f_lon[nm]) > 1e-4) | (np.abs(lat[sel] - f_lat[nm]) > 1e-4)
        for c in np.unique(nm[far]).tolist():
            self.moved[c] = True
        self.parts["name"].append(nm.astype(np.int32))
        self.parts["day"].append(day[sel].astype(np.int32))
        self.parts["stamp"].append(stamp[sel].astype(np.int32))
        self.parts["sm"].append(sm[sel])


def read_station_csv(
    path: str | Path,
    depth_range: Sequence[float] | None = DEFAULT_DEPTH,
    quality_flags: Iterable[str] | str | None = DEFAULT_FLAGS,
) -> StationSet:
    """Read a station CSV (see the module docstring) into daily means per station.

    The table is read in chunks of :data:`CSV_CHUNK` rows by pandas' C parser (when pandas
    is installed and the table is plain: no quoted fields, every line complete; otherwise
    by the csv module) and converted column by column, each distinct string once (ids,
    coordinates and dates repeat on every row); only the kept rows are held, as 20 bytes
    each (station, day, date code, value), so 12 million rows take about 250 MB.
    """
    path = Path(path)
    rng = _check_depth_range(depth_range)
    accepted = _flag_set(quality_flags)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            head = fh.readline()
            if not head.strip():
                raise StationError(f"{path}: the file is empty (a header row {', '.join(REQUIRED)} is expected)")
            delim = max((",", ";", "\t"), key=head.count)
            header = next(csv.reader([head], delimiter=delim))
    except UnicodeDecodeError as exc:
        raise StationError(f"{path}: is not a text (UTF-8) file: {exc}") from exc
    except OSError as exc:
        raise StationError(f"{path}: cannot be read: {exc}") from exc
    cols = _columns(header, path)
    wanted = {k: i for k, i in cols.items() if k != "flag" or accepted is not None}
    state = None
    line_count = 0
    if _pd is not None and _plain_table(path, delim, len(header)):
        try:
            state = _CsvState(rng, accepted)
            for chunk, keep in _chunks_pandas(path, delim, len(header), wanted):
                state.add(chunk, keep)
            line_count = state.n_rows + 1
        except (ValueError, UnicodeDecodeError, _pd.errors.ParserError) as exc:
            log.debug("%s: pandas could not read the table (%s); reading it with the csv module", path, exc)
            state = None
    if state is None:
        state = _CsvState(rng, accepted)
        counter = [0]
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                reader = csv.reader(fh, delimiter=delim)
                next(reader)
                for chunk, keep in _chunks_csv(reader, wanted, state.bad, counter):
                    state.add(chunk, keep)
                line_count = reader.line_num
        except UnicodeDecodeError as exc:
            raise StationError(f"{path}: is not a text (UTF-8) file: {exc}") from exc
        except csv.Error as exc:
            raise StationError(f"{path}: cannot be read as CSV: {exc}") from exc
        except OSError as exc:
            raise StationError(f"{path}: cannot be read: {exc}") from exc
    return _station_set(path, state, delim, line_count)


def _station_set(path: Path, state: _CsvState, delim: str, line_count: int) -> StationSet:
    """The :class:`StationSet` of a read table, with its warnings."""
    bad, n_rows = state.bad, state.n_rows
    if state.n_finite >= 3 and state.n_percent / state.n_finite > PERCENT_SHARE:
        _refuse_percent(np.concatenate(state.sm_seen).astype(np.float64), str(path), "the sm column")
    state.sm_seen = []
    msgs: list[str] = []
    if bad:
        order = sorted(bad)
        lines = {k: k + 2 for k in order}  # header on line 1, one line per row
        if line_count != n_rows + 1:  # multi-line quoted fields: count physical lines
            lines = _line_numbers(path, delim, order[: MAX_LISTED + 1])
        msg = _list_lines(str(path), [(lines.get(k, k + 2), bad[k]) for k in order])
        log.warning(msg)
        msgs.append(msg)
    if not state.parts["sm"]:
        why = "every row was skipped" if n_rows else "it has no data rows"
        detail = f" ({msgs[0]})" if msgs else ""
        raise StationError(f"{path}: no usable soil moisture value: {why}{detail}")

    cat = {}
    for k in list(state.parts):  # one column at a time: the chunks of a column go as it is joined
        cat[k] = np.concatenate(state.parts.pop(k))
    names = [""] * len(state.name_of)
    for nm, c in state.name_of.items():
        names[c] = nm
    used = np.flatnonzero(np.isfinite(np.array(state.first["raw"], dtype=np.float64)))
    uid = sorted(names[c] for c in used)
    rank = np.full(len(names), -1, dtype=np.int32)
    rank[[state.name_of[u] for u in uid]] = np.arange(len(uid))
    by = np.array([state.name_of[u] for u in uid], dtype=np.int64)  # station k -> name code
    inv = rank[cat.pop("name")]
    n = len(uid)
    st_lon = np.array(state.first["lon"])[by]
    st_lat = np.array(state.first["lat"])[by]
    moved = np.array(state.moved, dtype=bool)[by]
    if moved.any():
        ids_moved = [uid[k] for k in np.flatnonzero(moved)]
        msg = (
            f"{path}: station(s) {', '.join(ids_moved[:MAX_LISTED])}{' ...' if len(ids_moved) > MAX_LISTED else ''} "
            "have different coordinates on different rows; the first row's are used"
        )
        log.warning(msg)
        msgs.append(msg)
    sel = np.arange(inv.size)
    sel, inv, dup_msg = _drop_duplicates(sel, inv, cat["stamp"], cat["sm"], uid, str(path), cat["day"])
    if dup_msg:
        log.warning(dup_msg)
        msgs.append(dup_msg)
    del cat["stamp"]
    if sel.size < cat["sm"].size:
        cat = {k: v[sel] for k, v in cat.items()}
    start, values = _daily_means(inv, cat.pop("day"), cat.pop("sm"), n)
    del cat, sel, inv
    raw = np.array(state.first["raw"])[by].astype(np.int64)
    network = [state.net_of.get(int(c), "") for c in raw]
    dep = np.array(state.first["depth"])[by]
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
