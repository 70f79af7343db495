"""The MODIS sinusoidal tile grid and MODIS file names.

The MODIS land grid is a sinusoidal projection of a sphere of radius 6 371 007.181 m,
cut into 36 x 18 tiles of 1 111 950.5197665 m (``h`` 0..35 from the west, ``v`` 0..17
from the north); the grid's upper-left corner is (-20 015 109.354, 10 007 554.677) m
(MODLAND tile documentation). A 1 km tile has 1200 x 1200 pixels of 926.625433 m, a
500 m tile 2400 x 2400.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np

from ..grid import Grid, to_wkt, transform_points
from ..series import date_from_name

SPHERE_RADIUS = 6371007.181
TILE_SIZE = 1111950.5197665
X0 = -20015109.354
Y0 = 10007554.677
SINUSOIDAL = f"+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R={SPHERE_RADIUS} +units=m +no_defs"

_TILE_RX = re.compile(r"\.h(\d{2})v(\d{2})\.", re.IGNORECASE)
_PRODUCT_RX = re.compile(r"^(M[OYC]D\w+?)\.A(\d{7})", re.IGNORECASE)


def tile_grid(h: int, v: int, pixels: int = 1200) -> Grid:
    """The grid of MODIS tile ``h``/``v`` with ``pixels`` x ``pixels`` cells."""
    res = TILE_SIZE / pixels
    x0 = X0 + h * TILE_SIZE
    y0 = Y0 - v * TILE_SIZE
    return Grid(to_wkt(SINUSOIDAL), (x0, res, 0.0, y0, 0.0, -res), pixels, pixels)


def tile_of(path: str | Path) -> tuple[int, int] | None:
    """``(h, v)`` from a MODIS file name (``...h11v05...``), else None."""
    m = _TILE_RX.search(Path(str(path)).name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def product_of(path: str | Path) -> str:
    """The short name (``MOD11A1``, ``MYD13A2`` ...) from a MODIS file name, else ""."""
    m = _PRODUCT_RX.match(Path(str(path)).name)
    return m.group(1).upper() if m else ""


def platform_of(path: str | Path) -> str:
    """``terra`` (MOD), ``aqua`` (MYD), ``combined`` (MCD) or "" from a MODIS file name."""
    p = product_of(path)
    return {"MOD": "terra", "MYD": "aqua", "MCD": "combined"}.get(p[:3], "")


def modis_date(path: str | Path) -> dt.date | None:
    """The acquisition (or composite start) date ``AYYYYDDD`` of a MODIS file name."""
    return date_from_name(Path(str(path)).name)


def tiles_for_extent(bounds: tuple[float, float, float, float], crs: str | int = 4326, densify: int = 64) -> list[tuple[int, int]]:
    """The MODIS tiles ``(h, v)`` that intersect ``bounds = (xmin, ymin, xmax, ymax)`` in ``crs``.

    The extent's outline and interior are sampled (``densify`` points a side) and
    projected to the sinusoidal grid; tiles outside the projection's valid area (the
    corners of the sinusoidal world) never appear.
    """
    xmin, ymin, xmax, ymax = map(float, bounds)
    t = np.linspace(0.0, 1.0, densify + 1)
    gx, gy = np.meshgrid(xmin + t * (xmax - xmin), ymin + t * (ymax - ymin))
    sx, sy = transform_points(gx.ravel(), gy.ravel(), to_wkt(crs), to_wkt(SINUSOIDAL))
    ok = np.isfinite(sx) & np.isfinite(sy)
    h = np.floor((sx[ok] - X0) / TILE_SIZE).astype(int)
    v = np.floor((Y0 - sy[ok]) / TILE_SIZE).astype(int)
    keep = (h >= 0) & (h < 36) & (v >= 0) & (v < 18)
    return sorted(set(zip(h[keep].tolist(), v[keep].tolist())), key=lambda hv: (hv[1], hv[0]))
