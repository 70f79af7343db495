"""Grids of a sample scene: the 1 km scene grid, the padded simulation grid, the 36 km
EASE-Grid 2.0 window and the 0.1 degree background window.

The scene grid is a 1 km Lambert azimuthal equal-area grid centred on the place. The
simulation runs on a padded grid (same CRS and pixel alignment) that contains every full
coarse cell touching the scene, so coarse values at the scene edge are means over whole
cells, as real retrievals are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from ..grid import Grid, ease2_global, to_srs, to_wkt, transform_points

#: pixel size of the scene grid (m)
FINE_RES_M = 1000.0
#: authalic radius of WGS84 (km), for the closed-form spherical inverse projection
R_KM = 6371.0072
#: global 0.1 degree grid with cell centres on multiples of 0.1 degree (as ERA5-Land)
#: the 0.25 degree global geographic grid of AMSR2 LPRM and ESA CCI products
GEO025_GLOBAL = Grid(to_wkt(4326), (-180.0, 0.25, 0.0, 90.0, 0.0, -0.25), 1440, 720)
BACKGROUND_GLOBAL = Grid(to_wkt(4326), (-180.05, 0.1, 0.0, 90.05, 0.0, -0.1), 3601, 1801)


def laea_proj4(lon: float, lat: float) -> str:
    """PROJ string of the scene CRS centred at (lon, lat)."""
    return f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"


@dataclass(frozen=True)
class SceneGrids:
    """The grids of a scene; ``row0, col0`` place the scene inside the padded grid."""

    fine: Grid
    padded: Grid
    coarse: Grid
    background: Grid
    row0: int
    col0: int
    lon: float
    lat: float

    @property
    def x0_km(self) -> float:
        """x (km) of the centre of padded pixel (0, 0)."""
        gt = self.padded.transform
        return (gt[0] + 0.5 * gt[1]) / 1000.0

    @property
    def y0_km(self) -> float:
        gt = self.padded.transform
        return (gt[3] + 0.5 * gt[5]) / 1000.0

    @property
    def scene_rows(self) -> slice:
        return slice(self.row0, self.row0 + self.fine.height)

    @property
    def scene_cols(self) -> slice:
        return slice(self.col0, self.col0 + self.fine.width)


def coarse_global(name: str = "ease2_36km") -> Grid:
    """The global coarse grid a scene's coarse product is simulated on (see
    :data:`~.config.COARSE_GRIDS`)."""
    if name == "geo_0.25deg":
        return GEO025_GLOBAL
    return ease2_global(36)


def scene_grids(lon: float, lat: float, width_km: int, height_km: int, coarse_grid: str = "ease2_36km") -> SceneGrids:
    """The grids of a ``width_km x height_km`` scene centred at (lon, lat), with the coarse
    product on ``coarse_grid``."""
    srs = to_srs(laea_proj4(lon, lat))
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    srs.SetProjCS(f"WGS 84 / Lambert Azimuthal Equal Area {abs(lat):g}{ns} {abs(lon):g}{ew}")
    wkt = srs.ExportToWkt()
    w, h = int(width_km), int(height_km)
    x0 = -(w // 2) * FINE_RES_M
    y0 = (h - h // 2) * FINE_RES_M
    fine = Grid(wkt, (x0, FINE_RES_M, 0.0, y0, 0.0, -FINE_RES_M), w, h)
    coarse = coarse_global(coarse_grid).covering(fine, margin=0)
    background = BACKGROUND_GLOBAL.covering(fine, margin=1)
    # the padded grid holds every coarse cell touching the scene and every background
    # cell touching it plus one ring (so bilinear use of the background has neighbours)
    xs, ys = [fine.corner_xy()[0]], [fine.corner_xy()[1]]
    for g, ring in ((coarse, 0), (background, 1)):
        cx, cy = _touching_cell_corners(fine, g, ring, wkt)
        xs.append(cx)
        ys.append(cy)
    xa = np.concatenate(xs)
    ya = np.concatenate(ys)
    margin = 2  # km beyond the outermost cell corner
    c0 = int(math.floor((xa.min() - x0) / FINE_RES_M)) - margin
    c1 = int(math.ceil((xa.max() - x0) / FINE_RES_M)) + margin
    r0 = int(math.floor((y0 - ya.max()) / FINE_RES_M)) - margin
    r1 = int(math.ceil((y0 - ya.min()) / FINE_RES_M)) + margin
    padded = fine.window(r0, c0, r1 - r0, c1 - c0)
    return SceneGrids(fine, padded, coarse, background, -r0, -c0, float(lon), float(lat))


def _touching_cell_corners(fine: Grid, coarse: Grid, ring: int, wkt: str) -> tuple[np.ndarray, np.ndarray]:
    """Corners (scene CRS) of the coarse cells that the scene's outline passes through,
    plus ``ring`` rings of neighbours; cells inside the outline lie within the scene."""
    w, h = fine.width, fine.height
    t_w = np.arange(0, 2 * w + 1) / 2.0
    t_h = np.arange(0, 2 * h + 1) / 2.0
    rows = np.concatenate([np.zeros_like(t_w), t_h, np.full_like(t_w, h), t_h])
    cols = np.concatenate([t_w, np.full_like(t_h, w), t_w, np.zeros_like(t_h)])
    x, y = fine.xy(rows, cols, offset=0.0)
    px, py = transform_points(x, y, wkt, coarse.crs_wkt)
    inv = _inv_gt(coarse.transform)
    cc = np.floor(inv[0] + px * inv[1] + py * inv[2])
    rr = np.floor(inv[3] + px * inv[4] + py * inv[5])
    ok = np.isfinite(cc) & np.isfinite(rr)
    cells = np.unique(np.stack([rr[ok], cc[ok]], axis=1), axis=0)
    if ring:
        offs = np.array([(dr, dc) for dr in range(-ring, ring + 1) for dc in range(-ring, ring + 1)])
        cells = np.unique((cells[:, None, :] + offs[None, :, :]).reshape(-1, 2), axis=0)
    corner_r = (cells[:, :1] + np.array([0, 0, 1, 1])[None, :]).ravel()
    corner_c = (cells[:, 1:] + np.array([0, 1, 0, 1])[None, :]).ravel()
    gx, gy = coarse.xy(corner_r, corner_c, offset=0.0)
    fx, fy = transform_points(gx, gy, coarse.crs_wkt, wkt)
    ok = np.isfinite(fx) & np.isfinite(fy)
    return fx[ok], fy[ok]


def _inv_gt(gt: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(gdal.InvGeoTransform(gt))


def inverse_laea_deg(x_km: np.ndarray, y_km: np.ndarray, lon0: float, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (deg) of LAEA coordinates (km) on the authalic sphere.

    Closed form; within about 0.1 degree of the ellipsoidal answer, which is plenty for
    sun angles and climate gradients (exact coordinates come from :mod:`..grid`).
    """
    x = np.asarray(x_km, dtype=np.float64)
    y = np.asarray(y_km, dtype=np.float64)
    phi0 = math.radians(lat0)
    rho = np.hypot(x, y)
    c = 2.0 * np.arcsin(np.clip(rho / (2.0 * R_KM), -1.0, 1.0))
    sc, cc = np.sin(c), np.cos(c)
    with np.errstate(invalid="ignore", divide="ignore"):
        lat = np.arcsin(np.clip(cc * math.sin(phi0) + np.where(rho > 0, y * sc * math.cos(phi0) / rho, 0.0), -1, 1))
        lon = lon0 + np.degrees(np.arctan2(x * sc, rho * math.cos(phi0) * cc - y * math.sin(phi0) * sc))
    return lon, np.degrees(lat)
