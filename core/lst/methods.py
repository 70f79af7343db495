"""The gap-filling methods as day-by-day "fillers" sharing one small interface.

A filler receives the days of a moving window in date order (:meth:`add`), forgets those
that leave it (:meth:`drop`) and estimates the LST of every pixel of one day
(:meth:`estimate`); :func:`assemble` then keeps the observed pixels unchanged, clips the
estimates to a physical range and writes the flags. Days are integers (``date.toordinal()``)
so that window offsets are calendar days. Arrays are float32 ``(H, W)``, NaN = missing, K.

Methods here: ``temporal``, ``spatial`` and ``background``; the default ``anomaly`` lives
in :mod:`.anomaly`.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .background import BackgroundModel
from .footprint import Footprint
from .kernels import MISSING_Q, assemble_day, idw_fill, temporal_interp, window_sums
from .options import GapfillOptions

log = logging.getLogger(__name__)

#: flag values (uint8)
FLAG_OBSERVED = 0
FLAG_FILLED = 1
FLAG_NONE = 255
#: band description of the flag rasters
FLAG_LEGEND = "LST flag: 0 observed clear-sky, 1 gap-filled (cloudy), 255 no data"
#: band description of the LST rasters
LST_DESCRIPTION = "All-weather land surface temperature (K)"


@dataclass
class DayData:
    """The inputs of one day on the 1 km grid.

    ``lst``: clear-sky LST (K), NaN under cloud and on water; ``background``: all-weather
    background (K) already brought to 1 km (bilinear), NaN where it has no data or None;
    ``ndvi``: NDVI of the day (or its composite) or None.
    """

    lst: np.ndarray
    background: np.ndarray | None = None
    ndvi: np.ndarray | None = None


@dataclass
class StaticLayers:
    """What does not change from day to day.

    ``land``: pixels that may be filled (observed pixels are always land); None = all.
    ``dz``: elevation minus the elevation the background sees (``z - S[z]``, m) or None.
    ``footprint``: the background footprint operator (needed by ``anomaly``).
    ``pixel_km``: pixel size in km (converts the km options to pixels).
    """

    shape: tuple[int, int]
    pixel_km: float = 1.0
    land: np.ndarray | None = None
    dz: np.ndarray | None = None
    footprint: Footprint | None = None


def quantise(array: np.ndarray, quantum: float) -> np.ndarray:
    """int16 ``round(array / quantum)``, clipped to +-32767, ``MISSING_Q`` where not finite."""
    a = np.asarray(array, dtype=np.float32)
    q = np.rint(np.clip(np.nan_to_num(a / np.float32(quantum), nan=0.0, posinf=0.0, neginf=0.0), -32767, 32767))
    out = q.astype(np.int16)
    out[~np.isfinite(a)] = MISSING_Q
    return out


class DayStack:
    """Up to ``capacity`` day arrays ``(H, W)`` float32 in fixed slots (in memory, or in a
    temporary memory-mapped file when larger than ``max_memory_mb``)."""

    def __init__(self, capacity: int, shape: tuple[int, int], max_memory_mb: float = 2048.0,
                 quantum: float | None = None):
        self.capacity = max(1, int(capacity))
        self.shape = (int(shape[0]), int(shape[1]))
        #: with a ``quantum`` the days are stored as int16 multiples of it (half the memory;
        #: values beyond +-32767 quanta are clipped, missing values are ``MISSING_Q``)
        self.quantum = None if quantum is None else float(quantum)
        dtype = np.float32 if self.quantum is None else np.int16
        nbytes = self.capacity * self.shape[0] * self.shape[1] * np.dtype(dtype).itemsize
        self._tmp: tempfile.TemporaryDirectory | None = None
        if nbytes > max_memory_mb * 1024 * 1024:
            self._tmp = tempfile.TemporaryDirectory(prefix="ssm_lst_")
            path = Path(self._tmp.name) / "window.f32"
            self.data = np.memmap(path, dtype=dtype, mode="w+", shape=(self.capacity, *self.shape))
            log.info("The %d-day window (%.0f MB) is kept in a temporary file", self.capacity, nbytes / 2**20)
        else:
            self.data = np.empty((self.capacity, *self.shape), dtype=dtype)
        self.slots: dict[int, int] = {}

    def reserve(self, day: int) -> int:
        """The slot of ``day`` (the lowest free one for a new day), for writing it in place."""
        if day in self.slots:
            return self.slots[day]
        free = sorted(set(range(self.capacity)) - set(self.slots.values()))
        if not free:
            raise RuntimeError("DayStack is full: drop a day first")
        self.slots[day] = free[0]
        return free[0]

    def put(self, day: int, array: np.ndarray) -> None:
        slot = self.reserve(day)
        if self.quantum is None:
            self.data[slot] = array
        else:
            self.data[slot] = quantise(array, self.quantum)

    def remove(self, day: int) -> None:
        self.slots.pop(day, None)

    def window_sums(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(sum_d w_d x_d, sum_d w_d)`` over the finite values of the stored days, float32 (H, W)."""
        return window_sums(self.data, weights, 1.0 if self.quantum is None else self.quantum)

    def weights(self, fn) -> np.ndarray:
        """Per-slot weights ``fn(day)`` (0 for free slots), float64."""
        w = np.zeros(self.capacity, dtype=np.float64)
        for day, slot in self.slots.items():
            w[slot] = fn(day)
        return w

    def active(self, fn) -> tuple[np.ndarray, np.ndarray]:
        """``(slots, weights)``: the slots with a non-zero weight ``fn(day)``, ascending
        (the order in which :meth:`window_sums` adds them), int64 and float64."""
        w = self.weights(fn)
        slots = np.flatnonzero(w != 0.0).astype(np.int64)
        return slots, w[slots]

    def close(self) -> None:
        self.data = None  # type: ignore[assignment]
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


# ---------------------------------------------------------------------------------------
# output assembly
# ---------------------------------------------------------------------------------------


def assemble(
    lst: np.ndarray,
    estimate: np.ndarray | None,
    land: np.ndarray | None = None,
    valid_range: tuple[float, float] = (200.0, 350.0),
) -> tuple[np.ndarray, np.ndarray]:
    """All-weather LST and flags from the observed ``lst`` and an ``estimate`` (H, W).

    Observed (finite) pixels are copied unchanged (flag 0); missing pixels on ``land``
    (all when None) with a finite estimate get it clipped to ``valid_range`` (flag 1); the
    rest is NaN (flag 255).
    """
    lst = np.ascontiguousarray(lst, dtype=np.float32)
    out = np.empty(lst.shape, dtype=np.float32)
    flags = np.empty(lst.shape, dtype=np.uint8)
    est = lst if estimate is None else np.ascontiguousarray(estimate)  # no estimate: lst's NaN are not finite
    if est.dtype not in (np.float32, np.float64):
        est = est.astype(np.float64)
    use_land = land is not None and estimate is not None
    lnd = np.ascontiguousarray(land, dtype=np.bool_) if use_land else np.ones((1, 1), dtype=np.bool_)
    lo, hi = valid_range
    assemble_day(lst, est, use_land, lnd, float(lo), float(hi), out, flags)
    return out, flags


# ---------------------------------------------------------------------------------------
# lapse rate
# ---------------------------------------------------------------------------------------


def lapse_corrected(background: np.ndarray, dz: np.ndarray | None, lapse_rate: float) -> np.ndarray:
    """``background + lapse_rate * dz`` (dz NaN or None counts as 0), float32."""
    if dz is None or not math.isfinite(lapse_rate) or lapse_rate == 0:
        return background.astype(np.float32, copy=False)
    return (background + np.float32(lapse_rate) * np.nan_to_num(dz, nan=0.0)).astype(np.float32)


# ---------------------------------------------------------------------------------------
# the baselines
# ---------------------------------------------------------------------------------------


class Filler:
    """Base filler: single-day methods need no window."""

    half_window = 0

    def add(self, day: int, data: DayData) -> None:
        pass

    def drop(self, day: int) -> None:
        pass

    def estimate(self, day: int, data: DayData) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class BackgroundFiller(Filler):
    """``background``: the background at 1 km plus the (cloudy-sky) lapse-rate correction."""

    def __init__(self, static: StaticLayers, options: GapfillOptions, model: BackgroundModel | None = None):
        self.static = static
        self.model = model or BackgroundModel()

    def estimate(self, day: int, data: DayData) -> np.ndarray | None:
        if data.background is None:
            return None
        return lapse_corrected(data.background, self.static.dz, self.model.cloudy_lapse_rate)


class SpatialFiller(Filler):
    """``spatial``: inverse-distance weighting of today's clear pixels within a radius."""

    def __init__(self, static: StaticLayers, options: GapfillOptions):
        self.static = static
        self.radius_px = max(options.idw_radius_km / static.pixel_km, 1.0)
        self.power = options.idw_power

    def estimate(self, day: int, data: DayData) -> np.ndarray | None:
        return fill_spatial(data.lst, self.static.land, self.radius_px, self.power)


def fill_spatial(lst: np.ndarray, land: np.ndarray | None, radius_px: float, power: float = 2.0) -> np.ndarray:
    """IDW estimate of the missing (land) pixels of ``lst`` from its finite pixels (float32, NaN elsewhere)."""
    targets = ~np.isfinite(lst)
    if land is not None:
        targets &= land
    return idw_fill(lst, targets, radius_px, power)


class TemporalFiller(Filler):
    """``temporal``: per-pixel linear interpolation between the nearest clear days before
    and after, each at most ``max_gap`` days away (one side only: its value)."""

    def __init__(self, static: StaticLayers, options: GapfillOptions, max_memory_mb: float = 2048.0):
        self.static = static
        self.gap = options.gap
        self.half_window = self.gap
        self.stack = DayStack(2 * self.gap + 1, static.shape, max_memory_mb)

    def add(self, day: int, data: DayData) -> None:
        self.stack.put(day, data.lst)

    def drop(self, day: int) -> None:
        self.stack.remove(day)

    def estimate(self, day: int, data: DayData) -> np.ndarray | None:
        items = sorted((d, s) for d, s in self.stack.slots.items() if d != day and abs(d - day) <= self.gap)
        if not items:
            return np.full(self.static.shape, np.nan, dtype=np.float32)
        offsets = np.array([d - day for d, _ in items], dtype=np.int64)
        slots = [s for _, s in items]
        sub = np.ascontiguousarray(self.stack.data[slots])
        return temporal_interp(sub, offsets, int(self.gap))

    def close(self) -> None:
        self.stack.close()
