"""Grids of a sample scene: the 1 km scene grid, the padded simulation grid, the 36 km
EASE-Grid 2.0 window and the 0.1 degree background window.

The scene grid is a 1 km grid in an equal-area CRS with an authority code, so that QGIS
names it everywhere (its status bar shows only a CRS's authority id, and "Unknown CRS"
for any custom CRS, named or not): Asia North Albers Equal Area Conic (ESRI:102025) for
scenes inside its area of use (10-85N, 25E-175W: every place of :data:`~.places.PLACES`;
shapes within 22 % over China), else a named Lambert azimuthal equal-area CRS centred on
the scene. The scene is centred on its place, on whole kilometres of the CRS. The
simulation runs on a padded grid (same CRS and pixel alignment) that contains every full
coarse cell touching the scene, so coarse values at the scene edge are means over whole
cells, as real retrievals are.

The generator works in kilometres relative to the scene centre (``x_km, y_km``; CRS
coordinates ``centre_x + 1000 x_km``) and takes true latitude and ground directions from
:func:`lonlat_deg` and :func:`ground_jacobian`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from ..grid import Grid, ease2_global, to_srs, to_wkt, transform_points
from .noise import lattice_for

#: pixel size of the scene grid (m)
FINE_RES_M = 1000.0
#: the scene CRS where it applies: Asia North Albers Equal Area Conic (WGS 84, standard
#: parallels 15N and 65N, origin 30N 95E)
SCENE_CRS = "ESRI:102025"
#: its area of use (degrees: west, south, east, north; east beyond 180 wraps to 175W)
SCENE_CRS_AREA = (25.0, 10.0, 185.0, 85.0)
#: the global 0.25 degree geographic grid of AMSR2 LPRM and ESA CCI products
GEO025_GLOBAL = Grid(to_wkt(4326), (-180.0, 0.25, 0.0, 90.0, 0.0, -0.25), 1440, 720)
#: global 0.1 degree grid with cell centres on multiples of 0.1 degree (as ERA5-Land)
BACKGROUND_GLOBAL = Grid(to_wkt(4326), (-180.05, 0.1, 0.0, 90.05, 0.0, -0.1), 3601, 1801)
#: margin (km) around a scene checked against the CRS's area of use (room for the padding)
_PAD_CHECK_KM = 80.0
_WGS84 = to_wkt(4326)


def laea_proj4(lon: float, lat: float) -> str:
    """PROJ string of the Lambert azimuthal equal-area CRS centred at (lon, lat)."""
    return f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"


def laea_wkt(lon: float, lat: float) -> str:
    """WKT of the scene-centred LAEA CRS, with a name (QGIS shows it as the description)."""
    srs = to_srs(laea_proj4(lon, lat))
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    srs.SetProjCS(f"WGS 84 / Lambert Azimuthal Equal Area {abs(lat):g}{ns} {abs(lon):g}{ew}")
    return srs.ExportToWkt()


def scene_crs_wkt(lon: float, lat: float, width_km: float, height_km: float) -> str:
    """WKT of the CRS of a ``width_km x height_km`` scene centred at (lon, lat):
    :data:`SCENE_CRS` when the scene and its padding lie inside :data:`SCENE_CRS_AREA`,
    else the scene-centred LAEA (:func:`laea_wkt`)."""
    wkt = to_wkt(SCENE_CRS)
    cx, cy = transform_points(np.array([lon]), np.array([lat]), _WGS84, wkt)
    if np.isfinite(cx).all() and np.isfinite(cy).all():
        hx = 0.5 * width_km + _PAD_CHECK_KM
        hy = 0.5 * height_km + _PAD_CHECK_KM
        t = np.linspace(-1.0, 1.0, 41)
        one = np.ones_like(t)
        ox = float(cx[0]) + 1000.0 * hx * np.concatenate([t, one, -t, -one])
        oy = float(cy[0]) + 1000.0 * hy * np.concatenate([one, -t, -one, t])
        olon, olat = transform_points(ox, oy, wkt, _WGS84)
        if np.isfinite(olon).all() and np.isfinite(olat).all():
            w, s, e, n = SCENE_CRS_AREA
            olon = np.where(olon < w, olon + 360.0, olon)
            if olon.min() >= w and olon.max() <= e and olat.min() >= s and olat.max() <= n:
                return wkt
    return laea_wkt(lon, lat)


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
    #: CRS coordinates (m) of the scene centre: the origin of the generator's km coordinates
    centre_x: float = 0.0
    centre_y: float = 0.0

    @property
    def x0_km(self) -> float:
        """x (km, relative to the scene centre) of the centre of padded pixel (0, 0)."""
        gt = self.padded.transform
        return (gt[0] + 0.5 * gt[1] - self.centre_x) / 1000.0

    @property
    def y0_km(self) -> float:
        """y (km, relative to the scene centre) of the centre of padded pixel (0, 0)."""
        gt = self.padded.transform
        return (gt[3] + 0.5 * gt[5] - self.centre_y) / 1000.0

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
    wkt = scene_crs_wkt(lon, lat, width_km, height_km)
    w, h = int(width_km), int(height_km)
    px, py = transform_points(np.array([float(lon)]), np.array([float(lat)]), _WGS84, wkt)
    centre_x = round(float(px[0]) / FINE_RES_M) * FINE_RES_M  # on whole km of the CRS
    centre_y = round(float(py[0]) / FINE_RES_M) * FINE_RES_M
    x0 = centre_x - (w // 2) * FINE_RES_M
    y0 = centre_y + (h - h // 2) * FINE_RES_M
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
    return SceneGrids(fine, padded, coarse, background, -r0, -c0, float(lon), float(lat), centre_x, centre_y)


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


def lonlat_deg(grids: SceneGrids, x_km: np.ndarray, y_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (deg, float64) of points given in km relative to the scene
    centre (any equal or broadcastable shapes); exact (PROJ, WGS 84 ellipsoid)."""
    x = grids.centre_x + 1000.0 * np.asarray(x_km, dtype=np.float64)
    y = grids.centre_y + 1000.0 * np.asarray(y_km, dtype=np.float64)
    x, y = np.broadcast_arrays(x, y)
    return transform_points(x, y, grids.fine.crs_wkt, _WGS84)


def geo_lattice(grids: SceneGrids, step_km: float) -> tuple[float, float, list[np.ndarray]]:
    """Latitude and the grid-to-ground derivatives on a lattice of ``step_km`` (nodes on
    multiples of it, in km relative to the scene centre) over the padded grid:
    ``(lx0, ly0, [lat, dx/dE, dx/dN, dy/dE, dy/dN])`` with ``(lx0, ly0)`` the top-left node
    (km), latitude in degrees and the derivatives in grid m per ground m (float64); E and
    N are the local ground east and north on the WGS 84 ellipsoid.

    A grid gradient ``(dz/dx, dz/dy)`` (per grid m) is the ground gradient
    ``dz/dE = dz/dx dx/dE + dz/dy dy/dE``, ``dz/dN = dz/dx dx/dN + dz/dy dy/dN``. The
    matrix holds the CRS's scale factors and meridian convergence: the identity at the
    centre of a scene-centred LAEA; for ESRI:102025 over China, scales 0.86-1.09 and the
    grid turned by up to 20 degrees. One exact inverse projection of the nodes (PROJ),
    then derivatives by second-order differences along the lattice (relative error about
    (step / 5000 km)^2)."""
    p = grids.padded
    lx0, ly0, lr, lc = lattice_for(grids.x0_km, grids.y0_km, 1.0, p.height, p.width, step_km)
    lr, lc = max(lr, 3), max(lc, 3)  # room for second-order differences
    xs = lx0 + step_km * np.arange(lc)
    ys = ly0 - step_km * np.arange(lr)
    lon, lat = lonlat_deg(grids, xs[None, :], ys[:, None])
    lam = np.unwrap(np.radians(lon), axis=1)
    phi = np.radians(lat)
    h = 1000.0 * step_km
    # d(lambda, phi) / d(x, y): rows run south (-y), columns east (+x)
    lam_y, lam_x = np.gradient(lam, -h, h, edge_order=2)
    phi_y, phi_x = np.gradient(phi, -h, h, edge_order=2)
    a, e2 = 6378137.0, 0.0066943799901413165  # WGS 84 semi-major axis (m), eccentricity^2
    w = np.sqrt(1.0 - e2 * np.sin(phi) ** 2)
    radius_m = a * (1.0 - e2) / w**3  # meridian radius of curvature
    radius_n = a / w * np.cos(phi)  # radius of the parallel
    # d(E, N) / d(x, y), inverted to d(x, y) / d(E, N)
    ex, ey, nx, ny = radius_n * lam_x, radius_n * lam_y, radius_m * phi_x, radius_m * phi_y
    det = ex * ny - ey * nx
    return float(lx0), float(ly0), [lat, ny / det, -ey / det, -nx / det, ex / det]
