"""In-situ stations of the sample scene: where they are and what they measure.

Stations sit on random land pixels of the scene (not water, not next to water, not on
steep slopes, not at the edge). Each reports the true 0-5 cm SSM of its pixel plus a
static per-station offset (point-scale representativeness, sd ``station_offset_sd``)
and daily noise (sd ``station_noise_sd``), clipped to [0.01, 0.6] m3/m3; a few days are
missing (random days and occasional outages of several days).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..grid import Grid, to_wkt, transform_points
from .config import SceneError
from .weather import rng_for

STATION_DEPTH_M = 0.05
NETWORK = "SCENE"
MAX_SLOPE = 0.27  # m/m (about 15 degrees)
VALUE_RANGE = (0.01, 0.6)


@dataclass
class Stations:
    """Station positions on the scene grid and their static offsets."""

    ids: list[str]
    rows: np.ndarray  # scene-grid rows
    cols: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def as_list(self) -> list[dict]:
        return [
            {"station_id": s, "lon": round(float(x), 6), "lat": round(float(y), 6), "row": int(r), "col": int(c),
             "offset": round(float(o), 6)}
            for s, x, y, r, c, o in zip(self.ids, self.lon, self.lat, self.rows, self.cols, self.offsets)
        ]


def place_stations(n: int, fine: Grid, water: np.ndarray, steep: np.ndarray, seed: int, offset_sd: float) -> Stations:
    """Pick ``n`` station pixels (``water`` and ``steep`` masks on the scene grid; steep
    means a slope of at least :data:`MAX_SLOPE`)."""
    if n == 0:
        e = np.zeros(0)
        return Stations([], e.astype(int), e.astype(int), e, e, e)
    ok = ~ndi.binary_dilation(water, iterations=2) & ~steep
    edge = 2 if min(fine.shape) > 8 else 0
    if edge:
        ok[:edge] = ok[-edge:] = False
        ok[:, :edge] = ok[:, -edge:] = False
    cand = np.flatnonzero(ok.ravel())
    if cand.size < n:
        raise SceneError(f"The scene has only {cand.size} pixels suitable for stations (land, not steep, not at the "
                         f"edge); ask for at most that many stations or a larger scene")
    rng = rng_for(seed, "stations")
    pick = np.sort(rng.choice(cand, size=n, replace=False))
    rows, cols = np.divmod(pick, fine.width)
    x, y = fine.xy(rows, cols)
    lon, lat = transform_points(x, y, fine.crs_wkt, to_wkt(4326))
    offsets = rng.normal(0.0, offset_sd, n)
    ids = [f"SCENE{i + 1:03d}" for i in range(n)]
    return Stations(ids, rows, cols, lon, lat, offsets)


def missing_days(n_stations: int, n_days: int, fraction: float, seed: int) -> np.ndarray:
    """bool ``(n_stations, n_days)``: True where the station has no value."""
    rng = rng_for(seed, "station-missing")
    miss = rng.random((n_stations, n_days)) < fraction * 0.6
    for i in range(n_stations):
        if n_days > 10 and rng.random() < 0.3:  # an outage of 3-10 days
            length = int(rng.integers(3, 11))
            start = int(rng.integers(0, n_days - length + 1))
            miss[i, start : start + length] = True
    return miss


def station_values(truth: np.ndarray, offsets: np.ndarray, noise_sd: float, rng: np.random.Generator) -> np.ndarray:
    """Measured SSM of all stations for one day from the truth at their pixels."""
    v = truth + offsets + rng.normal(0.0, noise_sd, truth.shape)
    return np.clip(v, *VALUE_RANGE)


def write_stations_csv(path: Path, stations: Stations, days: list[dt.date], values: np.ndarray,
                       missing: np.ndarray) -> Path:
    """``station_id,lon,lat,date,sm,depth,network`` rows (missing days left out), atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["station_id", "lon", "lat", "date", "sm", "depth", "network"])
        for i, sid in enumerate(stations.ids):
            lon = f"{stations.lon[i]:.6f}"
            lat = f"{stations.lat[i]:.6f}"
            for j, d in enumerate(days):
                if missing[i, j] or not np.isfinite(values[i, j]):
                    continue
                w.writerow([sid, lon, lat, d.isoformat(), f"{values[i, j]:.4f}", f"{STATION_DEPTH_M:g}", NETWORK])
    os.replace(tmp, path)
    return path
