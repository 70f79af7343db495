"""On the sample scene: exact cell means (native EASE-Grid and a reprojected, rotated coarse
grid) and flags against the scene's seams and clouds. (Accuracy is measured by
benchmarks/bench_ssm.py, not here.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
from osgeo import gdal

from ssm_downscaling.core.downscale import build_membership, downscale_series
from ssm_downscaling.core.grid import Grid, to_wkt
from ssm_downscaling.core.series import DailySeries, read_raster, write_day

scene_mod = pytest.importorskip("ssm_downscaling.core.scene")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 108 km x 108 km, 8-day Tibet scene (small and fast)."""
    out = tmp_path_factory.mktemp("ds_scene")
    info = scene_mod.small_scene(out / "scene", width_km=108, height_km=108, days=8, seed=3, cloudiness=0.6)
    return info.out_dir


def _run(sc, out, ssm_dir=None, **kw):
    return downscale_series(ssm_dir or sc / "inputs" / "ssm_coarse", sc / "truth" / "lst", sc / "inputs" / "ndvi",
                            sc / "inputs" / "albedo", out / "ssm", out / "flags", out / "unc",
                            dem=sc / "inputs" / "dem.tif", lst_flags=sc / "truth" / "cloud", **kw)


def _check_means(summary, out, ssm_dir):
    coarse_series = DailySeries.from_folder(ssm_dir)
    m = build_membership(summary.fine, Grid.from_raster(coarse_series.files[coarse_series.start]))
    checked = 0
    for d in summary.days:
        ssm = read_raster(out / "ssm" / f"ssm_{d}.tif")
        coarse = read_raster(coarse_series.path(d), m.coarse, "nearest")
        mean, count = m.aggregate(ssm)
        ok = np.isfinite(coarse) & (count > 0) & (coarse >= 0.01) & (coarse <= 0.6)
        np.testing.assert_allclose(mean[ok], coarse[ok], atol=1e-6, err_msg=str(d))
        outside = np.isfinite(coarse) & (count > 0) & ~ok  # retrievals outside the physical range: at the bound
        np.testing.assert_allclose(mean[outside], np.clip(coarse[outside], 0.01, 0.6), atol=1e-6)
        checked += int(ok.sum())
    return m, checked


def test_cell_means_equal_the_coarse_product_on_the_scene(scene, tmp_path):
    out = tmp_path / "gwr"
    s = _run(scene, out, residual="coherent")
    assert len(s.days) == 8 and min(r["estimated_pct"] for r in s.coverage) >= 99.0
    m, checked = _check_means(s, out, scene / "inputs" / "ssm_coarse")
    assert checked > 8 * 4
    # flags: seam cells are the scene's missing retrievals, 2/3 where the scene is cloudy
    cloud = DailySeries.from_folder(scene / "truth" / "cloud")
    coarse = DailySeries.from_folder(scene / "inputs" / "ssm_coarse")
    for d in s.days:
        f = read_raster(out / "flags" / f"ssm_flags_{d}.tif")
        c = read_raster(cloud.path(d))
        y = read_raster(coarse.path(d), m.coarse, "nearest")
        est = np.isfinite(f)
        seam_px = ~np.isfinite(m.expand(y))
        np.testing.assert_array_equal((f[est].astype(int) & 1) == 1, seam_px[est])
        np.testing.assert_array_equal(f[est] >= 2, c[est] == 1)


def test_cell_means_exact_on_a_reprojected_rotated_coarse_grid(scene, tmp_path):
    """The scene's coarse SSM resampled onto a rotated 0.3-degree geographic grid."""
    src = DailySeries.from_folder(scene / "inputs" / "ssm_coarse")
    g0 = Grid.from_raster(src.files[src.start])
    lon0, lat0 = 89.5, 29.8
    a = math.radians(15)
    res = 0.3
    gt = (lon0 - 0.9, res * math.cos(a), -res * math.sin(a), lat0 + 0.9, -res * math.sin(a), -res * math.cos(a))
    rot = Grid(to_wkt(4326), gt, 8, 8)
    folder = tmp_path / "rotated"
    for d, p in src.files.items():
        ds = gdal.Warp("", str(p), options=gdal.WarpOptions(format="MEM", dstSRS=rot.crs_wkt, outputBounds=None,
                                                            width=60, height=60, resampleAlg="average"))
        tmp = rot.create_mem()
        tmp.GetRasterBand(1).SetNoDataValue(float("nan"))
        tmp.GetRasterBand(1).Fill(float("nan"))
        gdal.Warp(tmp, ds, options=gdal.WarpOptions(resampleAlg="average", dstNodata=float("nan")))
        arr = tmp.GetRasterBand(1).ReadAsArray()
        write_day(folder, "sm", d, arr, rot)
    assert g0 != rot
    out = tmp_path / "out"
    s = _run(scene, out, ssm_dir=folder, residual="coherent")
    assert not s.coarse.north_up
    _, checked = _check_means(s, out, folder)
    assert checked > 8 * 4


def _edge_ratio(field: np.ndarray, index: np.ndarray) -> float:
    """Mean |jump| between neighbouring pixels across coarse-cell edges / inside cells."""
    sums = np.zeros(4)
    for a, b in ((np.s_[:, 1:], np.s_[:, :-1]), (np.s_[1:, :], np.s_[:-1, :])):
        ia, ib = index[a], index[b]
        d = np.abs(field[a] - field[b])
        ok = np.isfinite(d) & (ia >= 0) & (ib >= 0)
        cross, inside = ok & (ia != ib), ok & (ia == ib)
        sums += [d[cross].sum(), cross.sum(), d[inside].sum(), inside.sum()]
    return (sums[0] / sums[1]) / (sums[2] / sums[3])


def test_filter_default_has_no_cell_edges_and_stays_near_the_coarse_values(scene, tmp_path):
    s = _run(scene, tmp_path / "filter")
    c = _run(scene, tmp_path / "coherent", residual="coherent")
    coarse_series = DailySeries.from_folder(scene / "inputs" / "ssm_coarse")
    m = build_membership(s.fine, Grid.from_raster(coarse_series.files[coarse_series.start]))
    truth = DailySeries.from_folder(scene / "truth" / "ssm")
    rf, rc, rt = [], [], []
    for d in s.days:
        f = read_raster(tmp_path / "filter" / "ssm" / f"ssm_{d}.tif")
        k = read_raster(tmp_path / "coherent" / "ssm" / f"ssm_{d}.tif")
        t = read_raster(truth.path(d))
        rf.append(_edge_ratio(f, m.index))
        rc.append(_edge_ratio(k, m.index))
        rt.append(_edge_ratio(np.where(np.isfinite(f), t, np.nan), m.index))
        assert np.nanmin(f) > 0.01 and np.nanmax(f) < 0.6  # soft bounds: strictly inside
        u = read_raster(tmp_path / "filter" / "unc" / f"ssm_uncertainty_{d}.tif")
        assert (u[np.isfinite(f)] > 0).all()
    assert np.mean(rf) < 1.3 * np.mean(rt) < np.mean(rc)
    # cell means depart from the coarse values by about the estimated retrieval error
    rows = s.coverage
    err = rows[0]["retrieval_error"]
    assert 0.005 < err < 0.05 and all(r["retrieval_error"] == err for r in rows)
    assert np.mean([r["mean_abs_departure"] for r in rows]) < 2.0 * err
    assert all(r["estimated_pct"] >= 99.0 for r in rows) and len(c.days) == len(s.days)
