"""A tiny synthetic world for the validation tests: daily rasters with known values at
known pixels, and station files built from them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ssm_downscaling.core.grid import Grid, to_wkt, transform_points
from ssm_downscaling.core.series import write_day

UTM50 = "EPSG:32650"
START = dt.date(2019, 6, 1)


@dataclass
class World:
    grid: Grid
    dates: list[dt.date]
    product: Path  # value(row, col, day) = 0.1 + 0.001*row + 0.0001*col + 0.002*(day % 10)
    flags: Path  # SSM flags: 0 on even days, 2 on odd days, 3 at column 0
    lon: np.ndarray
    lat: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    ids: list[str]

    def value(self, row, col, day_index):
        return 0.1 + 0.001 * np.asarray(row) + 0.0001 * np.asarray(col) + 0.002 * (np.asarray(day_index) % 10)


def product_value(grid: Grid, j: int) -> np.ndarray:
    r, c = np.mgrid[0 : grid.height, 0 : grid.width]
    return (0.1 + 0.001 * r + 0.0001 * c + 0.002 * (j % 10)).astype(np.float32)


def write_station_csv(path: Path, world: World, values: np.ndarray, extra_cols: bool = False) -> Path:
    """One row per station and day from a (n_stations, n_days) array (NaN rows skipped)."""
    lines = ["station_id,lon,lat,date,sm,depth,network" + (",comment" if extra_cols else "")]
    for i, sid in enumerate(world.ids):
        for j, d in enumerate(world.dates):
            if np.isfinite(values[i, j]):
                row = f"{sid},{world.lon[i]!r},{world.lat[i]!r},{d.isoformat()},{values[i, j]!r},0.05,TEST"
                lines.append(row + (",anything" if extra_cols else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("valworld")
    grid = Grid.from_bounds(UTM50, (500_000, 3_300_000, 530_000, 3_320_000), 1000)  # 30 x 20 px
    dates = [START + dt.timedelta(days=j) for j in range(40)]
    for j, d in enumerate(dates):
        if j == 7:  # a day without a product file
            continue
        arr = product_value(grid, j)
        arr[5, 5] = np.nan  # a nodata pixel
        write_day(root / "product", "ssm", d, arr, grid)
        flags = np.full(grid.shape, 0 if j % 2 == 0 else 2, dtype=np.uint8)
        flags[:, 0] = 3
        write_day(root / "flags", "ssm_flags", d, flags, grid, description="0 coarse observed, 1 seam-filled, "
                  "2 LST gap-filled under cloud, 3 both, 255 no estimate")
    rows = np.array([2, 10, 15, 5, 0, 19, 7])
    cols = np.array([3, 20, 29, 5, 0, 28, 11])  # S03 sits on the nodata pixel (5, 5)
    x, y = grid.xy(rows, cols)
    lon, lat = transform_points(x, y, grid.crs_wkt, to_wkt(4326))
    ids = [f"S{i:02d}" for i in range(len(rows))]
    return World(grid, dates, root / "product", root / "flags", lon, lat, rows, cols, ids)
