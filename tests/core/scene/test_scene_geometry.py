"""Grids of the sample scene (core/scene/geometry.py): the authority-coded equal-area CRS
QGIS can name, the fallback outside its area, exact coordinates and ground directions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from osgeo import osr

from ssm_downscaling.core.grid import to_srs, to_wkt, transform_points
from ssm_downscaling.core.scene import PLACES, SceneConfig
from ssm_downscaling.core.scene.generate import _World
from ssm_downscaling.core.scene.geometry import geo_lattice, lonlat_deg, scene_crs_wkt, scene_grids
from ssm_downscaling.core.scene.terrain import Terrain, block_terrain

WGS84 = to_wkt(4326)
#: WGS 84 semi-major axis (m) and first eccentricity
A = 6378137.0
E = math.sqrt(0.0066943799901413165)


def _authority(wkt: str) -> str:
    srs = to_srs(wkt)
    return f"{srs.GetAuthorityName(None)}:{srs.GetAuthorityCode(None)}"


def test_scene_grids():
    g = scene_grids(89.5, 29.8, 360, 360)
    assert g.fine.shape == (360, 360) and g.fine.res == (1000.0, 1000.0)
    assert _authority(g.fine.crs_wkt) == "ESRI:102025"
    assert g.coarse.res[0] == pytest.approx(36032.22, abs=0.01)
    gt = g.coarse.transform
    # on the global EASE-Grid 2.0 lattice
    assert ((gt[0] + 17367530.45) / gt[1]) == pytest.approx(round((gt[0] + 17367530.45) / gt[1]), abs=1e-6)
    assert g.background.res == pytest.approx((0.1, 0.1))
    assert g.padded.window_of(g.fine) == (g.row0, g.col0, 360, 360)
    # the padded grid holds every coarse cell touching the scene (its corners, the scene
    # sampled every 0.5 km)
    t = np.arange(0, 2 * 360 + 1) / 2.0
    rows, cols = np.meshgrid(t, t, indexing="ij")
    cx, cy = transform_points(*g.fine.xy(rows.ravel(), cols.ravel(), offset=0.0), g.fine.crs_wkt, g.coarse.crs_wkt)
    crows, ccols = g.coarse.rowcol(cx, cy)
    cells = np.unique(np.stack([crows, ccols], axis=1), axis=0)
    assert 90 <= len(cells) < g.coarse.size  # 10 x 10 or so cells, turned against the scene
    corner_r = (cells[:, :1] + np.array([0, 0, 1, 1])).ravel()
    corner_c = (cells[:, 1:] + np.array([0, 1, 0, 1])).ravel()
    px, py = transform_points(*g.coarse.xy(corner_r, corner_c, offset=0.0), g.coarse.crs_wkt, g.padded.crs_wkt)
    xmin, ymin, xmax, ymax = g.padded.bounds
    assert xmin <= px.min() and px.max() <= xmax and ymin <= py.min() and py.max() <= ymax


@pytest.mark.parametrize("name", sorted(PLACES))
def test_every_place_gets_the_authority_crs_centred_on_it(name):
    p = PLACES[name]
    cfg = SceneConfig(place=name, width_km=5000, height_km=4000) if name == "china" else SceneConfig(place=name)
    g = scene_grids(cfg.lon, cfg.lat, cfg.width, cfg.height)
    assert _authority(g.fine.crs_wkt) == "ESRI:102025"
    assert g.fine.res == (1000.0, 1000.0) and g.fine.shape == (cfg.height, cfg.width)
    # the scene centre: on whole km of the CRS, within a pixel of the place
    assert g.centre_x % 1000.0 == 0.0 and g.centre_y % 1000.0 == 0.0
    xmin, ymin, xmax, ymax = g.fine.bounds
    assert (xmin + xmax) / 2 == pytest.approx(g.centre_x, abs=500.0)
    assert (ymin + ymax) / 2 == pytest.approx(g.centre_y, abs=500.0)
    lon, lat = lonlat_deg(g, np.array(0.0), np.array(0.0))
    assert float(lon) == pytest.approx(p.lon, abs=0.01) and float(lat) == pytest.approx(p.lat, abs=0.01)
    # generator km coordinates are relative to that centre
    gt = g.padded.transform
    assert g.x0_km == pytest.approx((gt[0] + 500.0 - g.centre_x) / 1000.0)
    assert g.y0_km == pytest.approx((gt[3] - 500.0 - g.centre_y) / 1000.0)


def test_outside_asia_the_scene_gets_a_named_local_laea():
    for lon, lat in ((10.0, 50.0), (-60.0, -30.0), (26.0, 45.0)):  # Europe, South America, 25E edge
        wkt = scene_crs_wkt(lon, lat, 360, 360)
        srs = to_srs(wkt)
        assert srs.GetAttrValue("PROJECTION") == "Lambert_Azimuthal_Equal_Area"
        assert srs.GetProjParm(osr.SRS_PP_LATITUDE_OF_CENTER) == pytest.approx(lat)
        assert srs.GetProjParm(osr.SRS_PP_LONGITUDE_OF_CENTER) == pytest.approx(lon)
        assert srs.GetName().startswith("WGS 84 / Lambert Azimuthal Equal Area")
    assert "50N 10E" in to_srs(scene_crs_wkt(10.0, 50.0, 360, 360)).GetName()
    # inside the area of use, but too big for it (south of 10N)
    assert _authority(scene_crs_wkt(104.0, 35.0, 5000, 4000)) == "ESRI:102025"
    assert "Lambert" in to_srs(scene_crs_wkt(104.0, 20.0, 5000, 4000)).GetName()
    # across the antimeridian, still within 175W
    assert _authority(scene_crs_wkt(178.0, 60.0, 200, 200)) == "ESRI:102025"
    g = scene_grids(10.0, 50.0, 72, 72)
    assert (g.centre_x, g.centre_y) == (0.0, 0.0) and g.fine.transform[0] == -36000.0


def test_lonlat_is_exact():
    g = scene_grids(126.0, 46.0, 72, 72)
    x_km, y_km = np.array([[0.0, -150.0], [35.5, 210.0]]), np.array([[0.0, 80.0], [-35.5, -300.0]])
    lon, lat = lonlat_deg(g, x_km, y_km)
    assert lon.shape == (2, 2)
    ex, ey = transform_points(g.centre_x + 1000 * x_km, g.centre_y + 1000 * y_km, g.fine.crs_wkt, WGS84)
    np.testing.assert_allclose(lon, ex, atol=1e-9)
    np.testing.assert_allclose(lat, ey, atol=1e-9)


def _albers_n(phi1: float, phi2: float) -> float:
    """Cone constant of the ellipsoidal Albers projection (Snyder, eqs. 14-15, 3-12)."""
    def m(phi):
        return math.cos(phi) / math.sqrt(1 - (E * math.sin(phi)) ** 2)

    def q(phi):
        s = math.sin(phi)
        return (1 - E * E) * (s / (1 - (E * s) ** 2) - 1 / (2 * E) * math.log((1 - E * s) / (1 + E * s)))

    return (m(phi1) ** 2 - m(phi2) ** 2) / (q(phi2) - q(phi1))


def _jacobian_by_proj(g, x_km: float, y_km: float, d: float = 1e-4) -> np.ndarray:
    """(dx/dE, dx/dN, dy/dE, dy/dN) at a point: forward projection of small steps east and
    north on the ellipsoid (the reference for :func:`geo_lattice`)."""
    lon, lat = (float(v) for v in lonlat_deg(g, np.array(x_km), np.array(y_km)))
    phi = math.radians(lat)
    w = math.sqrt(1 - (E * math.sin(phi)) ** 2)
    de = 2 * math.radians(d) * A / w * math.cos(phi)
    dn = 2 * math.radians(d) * A * (1 - E * E) / w**3
    x, y = transform_points(np.array([lon + d, lon - d, lon, lon]), np.array([lat, lat, lat + d, lat - d]), WGS84,
                            g.fine.crs_wkt)
    return np.array([(x[0] - x[1]) / de, (x[2] - x[3]) / dn, (y[0] - y[1]) / de, (y[2] - y[3]) / dn])


def _at(lattice, x_km: float, y_km: float, step: float) -> np.ndarray:
    lx0, ly0, fields = lattice
    r, c = round((ly0 - y_km) / step), round((x_km - lx0) / step)
    return np.array([f[r, c] for f in fields])


def test_geo_lattice():
    # a scene-centred LAEA: the identity at its centre
    g = scene_grids(10.0, 50.0, 72, 72)
    lat_jac = _at(geo_lattice(g, 8.0), 0.0, 0.0, 8.0)
    assert lat_jac[0] == pytest.approx(50.0, abs=1e-9)
    np.testing.assert_allclose(lat_jac[1:], [1.0, 0.0, 0.0, 1.0], atol=1e-6)
    # Asia North Albers: equal area (determinant 1), scales within 15 % over China, and
    # the grid turned against true north by the meridian convergence n (lon - 95E); at
    # inner and edge nodes of the lattice as PROJ's own forward differences
    n = _albers_n(math.radians(15.0), math.radians(65.0))
    assert n == pytest.approx(0.5826, abs=2e-3)
    for name in ("tibet", "loess", "northeast", "south"):
        p = PLACES[name]
        g = scene_grids(p.lon, p.lat, 144, 144)
        lattice = geo_lattice(g, 8.0)
        lx0, ly0, fields = lattice
        assert fields[0].shape[0] >= (g.padded.height - 1) / 8.0 and fields[0].shape[1] >= (g.padded.width - 1) / 8.0
        xe, xn, ye, yn = _at(lattice, 0.0, 0.0, 8.0)[1:]
        assert xe * yn - xn * ye == pytest.approx(1.0, abs=1e-5), name
        gamma = n * math.radians(p.lon - 95.0)
        assert math.atan2(ye, xe) == pytest.approx(gamma, abs=2e-4), name  # ground east on the grid
        assert math.atan2(-xn, yn) == pytest.approx(gamma, abs=2e-4), name  # ground north on the grid
        assert 0.85 < xe / math.cos(gamma) < 1.0 < yn / math.cos(gamma) < 1.15, name
        for x_km, y_km in ((0.0, 0.0), (lx0, ly0), (lx0 + 8.0 * (fields[0].shape[1] - 1), 16.0)):
            np.testing.assert_allclose(_at(lattice, x_km, y_km, 8.0)[1:], _jacobian_by_proj(g, x_km, y_km),
                                       atol=2e-6, err_msg=f"{name} {x_km} {y_km}")


def test_ground_slopes_follow_true_north():
    """A plane rising 10 m per ground km towards true north, on the northeast scene (grid
    turned 18 degrees, scales 0.91 / 1.10): the generator sees the slope north, 1 %."""
    p = PLACES["northeast"]
    cfg = SceneConfig(place="northeast", width_km=72, days=1, spinup_days=1, n_stations=1)
    g = scene_grids(p.lon, p.lat, 72, 72)
    rows, cols = np.mgrid[0 : g.padded.height, 0 : g.padded.width]
    _, lat = lonlat_deg(g, g.x0_km + cols, g.y0_km - rows)
    phi0 = math.radians(p.lat)
    m0 = A * (1 - E * E) / (1 - (E * math.sin(phi0)) ** 2) ** 1.5  # metres per radian north
    elev = (0.01 * m0 * np.radians(lat - p.lat)).astype(np.float32)
    world = _World(cfg, p, g, Terrain(elev, np.zeros(elev.shape, dtype=bool), "plane"))
    bt = block_terrain(elev, 0, g.padded.height)
    dzde, dzdn, blat = world.ground_slopes(0, g.padded.height, bt)
    inner = (slice(5, -5), slice(5, -5))
    np.testing.assert_allclose(dzdn[inner], 0.01, rtol=0.01)
    np.testing.assert_allclose(dzde[inner], 0.0, atol=2e-4)
    np.testing.assert_allclose(blat, lat, atol=5e-5)
    # on the grid the same plane rises along both axes (the grid is turned)
    assert abs(float(np.median(bt.dzdx[inner]))) > 0.002
