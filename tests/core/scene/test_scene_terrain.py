"""Terrain of the sample scene: the committed SRTM subset, lakes, fractal terrain, blocks."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from ssm_downscaling.core.grid import Grid, open_raster, to_wkt, transform_points
from ssm_downscaling.core.scene import PLACES
from ssm_downscaling.core.scene.geometry import scene_grids
from ssm_downscaling.core.scene.terrain import DATA_DIR, block_terrain, build_terrain, lakes_in_dem


def test_committed_dem_subset_matches_its_origin_note():
    path = DATA_DIR / "srtm30_tibet.tif"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    note = (DATA_DIR / "ORIGIN.md").read_text(encoding="utf-8")
    assert digest in note
    assert "public domain" in note and "gdal_translate" in note
    g = Grid.from_raster(path)
    assert (g.width, g.height) == (624, 497)
    west, south, east, north = g.bounds
    assert west == pytest.approx(87.0, abs=1e-3) and east == pytest.approx(92.2, abs=1e-3)
    assert south == pytest.approx(27.4, abs=1e-3) and north == pytest.approx(31.5417, abs=1e-3)


def test_subset_is_an_exact_window_of_the_shared_dem(shared_data):
    src = open_raster(shared_data / "dem" / "himalaya.tif")  # keep datasets referenced while reading
    full = src.GetRasterBand(1).ReadAsArray(1042, 0, 624, 497)
    cut = open_raster(DATA_DIR / "srtm30_tibet.tif")
    sub = cut.GetRasterBand(1).ReadAsArray()
    np.testing.assert_array_equal(full, sub)


def test_lakes_are_flat_connected_areas():
    rng = np.random.default_rng(0)
    dem = 4800 + rng.normal(0, 30, (60, 60)).round()
    dem[20:30, 10:25] = 4700.0  # 150 flat pixels
    dem[45:48, 40:43] = 4690.0  # 9 flat pixels: too small for a lake
    lakes = lakes_in_dem(dem)
    assert lakes[20:30, 10:25].all()
    assert lakes.sum() == 150
    assert not lakes[45:48, 40:43].any()


def test_tibet_terrain_is_real_srtm_with_nam_co():
    g = scene_grids(89.5, 29.8, 360, 360)
    t = build_terrain(PLACES["tibet"], g.padded, g.x0_km, g.y0_km, seed=1)
    assert t.elevation.shape == g.padded.shape and t.elevation.dtype == np.float32
    assert np.isfinite(t.elevation).all()
    assert 3000 < float(np.median(t.elevation)) < 5500
    assert 6000 < float(t.elevation.max()) < 8000  # Nyainqentanglha range
    # Nam Co (30.70N 90.60E, 4724 m) is water
    x, y = transform_points(np.array([90.60]), np.array([30.70]), to_wkt(4326), g.padded.crs_wkt)
    r, c = g.padded.rowcol(x, y)
    assert t.water[r[0], c[0]]
    assert t.elevation[r[0], c[0]] == pytest.approx(4724, abs=5)
    assert 0.005 < t.water.mean() < 0.1
    assert 0 < t.filled_fraction < 0.05  # only the padding north of 31.54N is filled
    assert "SRTM30" in t.source


def test_fractal_places():
    for name in ("loess", "northeast", "south"):
        p = PLACES[name]
        g = scene_grids(p.lon, p.lat, 144, 144)
        t = build_terrain(p, g.padded, g.x0_km, g.y0_km, seed=3)
        assert np.isfinite(t.elevation).all() and t.elevation.min() >= 2.0
        assert abs(float(t.elevation.mean()) - p.elev_mean_m) < 3 * p.elev_relief_m
        assert t.source == "fractal"
        if name == "loess":
            assert not t.water.any()
    ne = PLACES["northeast"]
    g = scene_grids(ne.lon, ne.lat, 400, 400)
    t = build_terrain(ne, g.padded, g.x0_km, g.y0_km, seed=3)
    assert 0.001 < t.water.mean() < 0.05  # a few basin lakes
    lake_levels = t.elevation[t.water]
    assert lake_levels.size and np.isfinite(lake_levels).all()


def test_block_terrain_equals_whole_grid():
    g = scene_grids(89.5, 29.8, 144, 144)
    t = build_terrain(PLACES["tibet"], g.padded, g.x0_km, g.y0_km, seed=1)
    whole = block_terrain(t.elevation, 0, g.padded.height)
    part = block_terrain(t.elevation, 37, 41)
    for name in ("dzdx", "dzdy", "dzdx_smooth", "dzdy_smooth", "relative"):
        np.testing.assert_allclose(getattr(part, name), getattr(whole, name)[37:78], atol=1e-4, err_msg=name)
