"""The generated sample scene: layout, determinism, plausible values and the stated
relations between truth and simulated observations."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from ssm_downscaling.core import scene as scene_mod
from ssm_downscaling.core.errors import Cancelled
from ssm_downscaling.core.grid import Grid, to_wkt, transform_points
from ssm_downscaling.core.membership import Membership
from ssm_downscaling.core.scene import LAYOUT, SceneConfig, SceneError, composite_start, generate_scene, small_scene
from ssm_downscaling.core.scene.generate import scene_paths
from ssm_downscaling.core.series import DailySeries, LayerSource, read_date_item, read_raster


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _series(info, key) -> DailySeries:
    return DailySeries.from_folder(info.paths[key])


# ---------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------


def test_layout_names_grids_and_metadata(medium_scene):
    info = medium_scene
    out = info.out_dir
    days = info.dates
    assert len(days) == 12 and days[0] == dt.date(2019, 6, 1)
    for key, (folder, prefix) in LAYOUT.items():
        files = sorted(p.name for p in (out / folder).iterdir())
        assert files and all(f.startswith(prefix + "_") and f.endswith(".tif") for f in files), key
        if key != "ndvi":
            assert files == [f"{prefix}_{d.isoformat()}.tif" for d in days], key
    assert not [p for p in out.rglob(".*")]  # no temporary files left
    fine = Grid.from_raster(out / "inputs" / "dem.tif")
    assert fine == info.fine_grid and fine.shape == (216, 216) and fine.res == (1000.0, 1000.0)
    # Asia North Albers Equal Area (ESRI:102025): GeoTIFF keys hold no ESRI code, but the
    # CRS read back is identified as it (as QGIS does, to name it)
    assert fine.srs.GetName() == "Asia_North_Albers_Equal_Area_Conic"
    match, confidence = fine.srs.FindMatches()[0]
    assert (match.GetAuthorityName(None), match.GetAuthorityCode(None), confidence) == ("ESRI", "102025", 100)
    for key in ("lst", "albedo", "ndvi", "truth_ssm", "truth_lst", "truth_cloud"):
        assert _series(info, key).grid() == fine, key
    coarse = _series(info, "ssm_coarse").grid()
    assert coarse == info.coarse_grid
    assert coarse.srs.GetAuthorityCode(None) == "6933"
    assert coarse.res[0] == pytest.approx(36032.22, abs=0.01)
    col = (coarse.transform[0] - -17367530.45) / coarse.res[0]
    row = (7314540.83 - coarse.transform[3]) / coarse.res[0]
    assert col == pytest.approx(round(col), abs=1e-4) and row == pytest.approx(round(row), abs=1e-4)
    bg = _series(info, "lst_background").grid()
    assert bg.srs.GetAuthorityCode(None) == "4326" and bg.res == pytest.approx((0.1, 0.1))
    # written with core.series: DATE metadata, nodata, types
    from osgeo import gdal

    day = days[3]
    ds = gdal.Open(str(info.paths["truth_ssm"] / f"ssm_{day}.tif"))
    assert ds.GetMetadataItem("DATE") == day.isoformat()
    assert ds.GetRasterBand(1).GetNoDataValue() == -9999 and ds.GetRasterBand(1).DataType == gdal.GDT_Float32
    ds = gdal.Open(str(info.paths["truth_cloud"] / f"cloud_{day}.tif"))
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Byte and ds.GetRasterBand(1).GetNoDataValue() == 255
    assert "1 cloud" in ds.GetRasterBand(1).GetDescription()
    ds = None


def test_scene_json(medium_scene):
    s = json.loads((medium_scene.out_dir / "scene.json").read_text())
    assert s == medium_scene.scene
    for key in ("seed", "place", "centre_lon", "centre_lat", "width_km", "height_km", "days", "start_date",
                "cloudiness", "n_stations", "fine_grid", "coarse_grid", "background_grid", "coarse_ssm_bias",
                "coarse_ssm_noise_sd", "station_noise_sd", "station_offset_sd", "background_bias_k",
                "background_noise_sd_k", "land_fraction", "mean_cloud_cover", "seam_days", "generator_version"):
        assert key in s, key
    assert (s["place"], s["width_km"], s["height_km"], s["days"], s["start_date"]) == ("tibet", 216, 216, 12,
                                                                                       "2019-06-01")
    g = s["fine_grid"]
    assert Grid(g["crs_wkt"], tuple(g["transform"]), g["width"], g["height"]) == medium_scene.fine_grid
    assert 0.9 < s["land_fraction"] <= 1.0
    assert "time" not in json.dumps(s).lower().replace("timedelta", "")  # no timestamps


def test_stations_csv_format(medium_scene):
    with open(medium_scene.paths["stations"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["station_id", "lon", "lat", "date", "sm", "depth", "network"]
    ids = sorted({r["station_id"] for r in rows})
    assert len(ids) == 12
    assert {r["network"] for r in rows} == {"SCENE"} and {r["depth"] for r in rows} == {"0.05"}
    assert len(rows) < 12 * 12  # a few missing days
    assert len(rows) > 0.6 * 12 * 12
    sm = np.array([float(r["sm"]) for r in rows])
    assert sm.min() >= 0.01 and sm.max() <= 0.6
    dates = {dt.date.fromisoformat(r["date"]) for r in rows}
    assert dates <= set(medium_scene.dates)


# ---------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = small_scene(tmp_path / "a", days=4, spinup_days=3)
    b = small_scene(tmp_path / "b", days=4, spinup_days=3)
    c = small_scene(tmp_path / "c", days=4, spinup_days=3, seed=2)
    ha, hb, hc = _tree_hashes(a.out_dir), _tree_hashes(b.out_dir), _tree_hashes(c.out_dir)
    assert ha == hb
    assert set(ha) == set(hc)
    differing = [k for k in ha if ha[k] != hc[k]]
    assert "scene.json" in differing and any(k.startswith("truth/ssm") for k in differing)
    assert "inputs/dem.tif" in ha and ha["inputs/dem.tif"] == hc["inputs/dem.tif"]  # real terrain is the same


def test_blocks_give_the_same_world(tmp_path, monkeypatch):
    """A scene simulated in row blocks (streaming writers, as for China-sized scenes) has
    the same truth as the same scene in one block."""
    one = small_scene(tmp_path / "one", days=3, spinup_days=2)
    from ssm_downscaling.core.scene import generate as gen

    monkeypatch.setattr(gen, "BLOCK_PIXELS", 3000)
    monkeypatch.setattr(gen, "CACHE_STATICS_MAX_PIXELS", 0)
    many = small_scene(tmp_path / "many", days=3, spinup_days=2, block_rows=16)
    for key in ("truth_ssm", "truth_lst", "truth_cloud", "ssm_coarse", "lst_background"):
        for day in one.dates:
            a = _series(one, key).read(day)
            b = _series(many, key).read(day)
            np.testing.assert_allclose(a, b, atol=1e-5, equal_nan=True, err_msg=f"{key} {day}")
    assert one.scene["seam_days"] == many.scene["seam_days"]


# ---------------------------------------------------------------------------------------
# plausible values
# ---------------------------------------------------------------------------------------


def _all(info, key):
    s = _series(info, key)
    return np.stack([s.read(d) for d in s.dates])


def test_plausible_ranges(medium_scene):
    ssm = _all(medium_scene, "truth_ssm")
    lst = _all(medium_scene, "truth_lst")
    ndvi = _all(medium_scene, "ndvi")
    alb = _all(medium_scene, "albedo")
    obs = _all(medium_scene, "lst")
    bg = _all(medium_scene, "lst_background")
    for name, a, lo, hi in (("ssm", ssm, 0.02, 0.5), ("lst", lst, 250, 340), ("ndvi", ndvi, -0.2, 0.95),
                            ("albedo", alb, 0.05, 0.5), ("lst input", obs, 250, 340), ("background", bg, 250, 340)):
        v = a[np.isfinite(a)]
        assert v.size and lo <= v.min() and v.max() <= hi, (name, v.min(), v.max())
    assert ssm[np.isfinite(ssm)].std() > 0.01  # not flat
    water = ~np.isfinite(_series(medium_scene, "truth_ssm").read(medium_scene.dates[0]))
    for a in (ssm, lst, ndvi, alb, obs):
        assert np.isnan(a[:, water]).all()  # nodata on water
    dem = read_raster(medium_scene.paths["dem"])
    assert np.isfinite(dem).all() and 3000 < np.median(dem) < 5600


def test_cloud_cover_tracks_cloudiness(tmp_path):
    covers = {}
    for c in (0.0, 0.2, 0.8, 1.0):
        info = small_scene(tmp_path / f"c{c}", days=8, spinup_days=1, cloudiness=c, n_stations=0)
        covers[c] = info.scene["mean_cloud_cover"]
        cloud = _all(info, "truth_cloud")
        assert set(np.unique(cloud)) <= {0, 1}
        assert cloud.mean() == pytest.approx(covers[c], abs=1e-6)
    assert covers[0.0] == 0.0 and covers[1.0] == 1.0
    assert covers[0.2] < covers[0.8]


def test_clouds_follow_rain():
    """Over many days the cloud mask at the overpass is more frequent where it rains."""
    from ssm_downscaling.core.scene import PLACES, weather

    p = PLACES["tibet"]
    bounds = (-150.0, -150.0, 150.0, 150.0)
    wet = dry = wet_cloud = dry_cloud = 0
    for i in range(40):
        w = weather.make_day(dt.date(2019, 7, 1) + dt.timedelta(days=i), p, 7, 0.5, bounds)
        rain = w.lattices["rain"].at(-149.5, 149.5, 3.0, 100, 100)
        cloudy = weather.cloud_field(w, -149.5, 149.5, 3.0, 100, 100) > w.cloud_threshold
        r = rain > 2.0
        wet += r.sum()
        dry += (rain < 0.1).sum()
        wet_cloud += (cloudy & r).sum()
        dry_cloud += (cloudy & (rain < 0.1)).sum()
    assert wet > 1000 and dry > 1000
    assert wet_cloud / wet > 1.5 * dry_cloud / dry
    assert wet_cloud / wet > 0.6


def test_clouds_come_with_wetting_in_the_written_scene(medium_scene):
    """Written outputs only: pixels whose truth SSM jumps up (rain) are cloudy more often."""
    ssm = _all(medium_scene, "truth_ssm")
    cloud = _all(medium_scene, "truth_cloud").astype(float)
    jump = (ssm[1:] - ssm[:-1]) > 0.03
    assert jump.sum() > 200
    assert cloud[1:][jump].mean() > cloud[1:].mean() + 0.1


# ---------------------------------------------------------------------------------------
# sensors vs truth
# ---------------------------------------------------------------------------------------


def test_coarse_ssm_is_aggregated_truth_plus_stated_bias_and_noise(medium_scene):
    info = medium_scene
    s = info.scene
    m = Membership.build(info.fine_grid, info.coarse_grid)
    full = m.coverage() > 0.995  # coarse cells entirely inside the written scene
    assert full.sum() >= 9
    resid = []
    for day in info.dates:
        truth = _series(info, "truth_ssm").read(day)
        mean, count = m.aggregate(truth)
        coarse = _series(info, "ssm_coarse").read(day)
        ok = full & np.isfinite(coarse) & np.isfinite(mean)
        resid.append((coarse - mean)[ok])
    r = np.concatenate(resid)
    n = r.size
    assert n > 80
    assert r.mean() == pytest.approx(s["coarse_ssm_bias"], abs=4 * s["coarse_ssm_noise_sd"] / math.sqrt(n))
    assert r.std() == pytest.approx(s["coarse_ssm_noise_sd"], rel=0.25)
    # edge cells are whole-cell retrievals too (the simulation is padded): valid when not in a seam
    coarse0 = _series(info, "ssm_coarse").read(info.dates[0])
    edge = np.zeros(coarse0.shape, bool)
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    assert np.isfinite(coarse0[edge]).mean() > 0.5


def test_seams_on_some_days_only(medium_scene):
    info = medium_scene
    seam_days = info.scene["seam_days"]
    assert 0 < len(seam_days) < len(info.dates)
    m = Membership.build(info.fine_grid, info.coarse_grid)
    touching = m.members > 0
    for day in info.dates:
        coarse = _series(info, "ssm_coarse").read(day)
        lake = np.isnan(_series(info, "ssm_coarse").read(info.dates[0])) & np.isnan(coarse)
        gaps = np.isnan(coarse) & touching
        if day.isoformat() in seam_days:
            assert gaps.any()
        else:
            assert not (gaps & ~lake).any(), day


def test_seam_geometry():
    """Seams are tilted bands that move day to day and repeat every 4 days (+ jitter)."""
    from ssm_downscaling.core.grid import ease2_global
    from ssm_downscaling.core.scene import sensors

    g = ease2_global(36).window(50, 400, 60, 120)
    masks = [sensors.seam_mask(g, dt.date(2019, 6, 1) + dt.timedelta(days=i), 1) for i in range(8)]
    for mk in masks:
        rows_hit = mk.any(axis=1)
        assert rows_hit.all()  # a band crosses the whole window from top to bottom
        per_row = mk.sum(axis=1)
        assert 1 <= per_row.min() and per_row.max() <= 3 * (g.width // 33 + 1)
        cols = [np.flatnonzero(mk[r])[0] for r in (0, 59)]
        assert cols[0] != cols[1]  # tilted
    assert not np.array_equal(masks[0], masks[1])
    # same phase four days later: nearly the same place
    overlap = (masks[0] & masks[4]).sum() / masks[0].sum()
    assert overlap > 0.3


def test_stations_sample_the_truth_with_stated_offset_and_noise(medium_scene):
    info = medium_scene
    s = info.scene
    truth = {d: _series(info, "truth_ssm").read(d) for d in info.dates}
    with open(info.paths["stations"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_id = {st["station_id"]: st for st in s["stations"]}
    resid_by_station: dict[str, list[float]] = {}
    for r in rows:
        st = by_id[r["station_id"]]
        t = truth[dt.date.fromisoformat(r["date"])][st["row"], st["col"]]
        assert np.isfinite(t)
        resid_by_station.setdefault(r["station_id"], []).append(float(r["sm"]) - float(t) - st["offset"])
    all_res = np.concatenate([np.array(v) for v in resid_by_station.values()])
    assert abs(all_res.mean()) < 4 * s["station_noise_sd"] / math.sqrt(all_res.size)
    assert all_res.std() == pytest.approx(s["station_noise_sd"], rel=0.2)
    offsets = np.array([st["offset"] for st in s["stations"]])
    assert 0.3 * s["station_offset_sd"] < offsets.std() < 2.0 * s["station_offset_sd"]
    # the coordinates are those of the station's pixel centre
    lon = np.array([st["lon"] for st in s["stations"]])
    lat = np.array([st["lat"] for st in s["stations"]])
    x, y = transform_points(lon, lat, to_wkt(4326), info.fine_grid.crs_wkt)
    r, c = info.fine_grid.rowcol(x, y)
    np.testing.assert_array_equal(r, [st["row"] for st in s["stations"]])
    np.testing.assert_array_equal(c, [st["col"] for st in s["stations"]])


def test_lst_input_is_truth_where_clear(medium_scene):
    info = medium_scene
    res = []
    for day in info.dates:
        truth = _series(info, "truth_lst").read(day)
        obs = _series(info, "lst").read(day)
        cloud = _series(info, "truth_cloud").read(day)
        assert np.isnan(obs[cloud == 1]).all()
        clear = (cloud == 0) & np.isfinite(truth)
        assert np.isfinite(obs[clear]).all()
        res.append((obs - truth)[clear])
    r = np.concatenate(res)
    assert abs(r.mean()) < 0.02
    assert r.std() == pytest.approx(info.scene["lst_noise_sd_k"], rel=0.05)


def test_background_is_a_biased_smooth_copy_of_the_truth(medium_scene):
    info = medium_scene
    m = Membership.build(info.fine_grid, info.background_grid)
    full = m.coverage() > 0.995
    diffs = []
    corr = []
    for day in info.dates:
        truth = _series(info, "truth_lst").read(day)
        mean, _ = m.aggregate(truth)
        bg = _series(info, "lst_background").read(day)
        ok = full & np.isfinite(bg) & np.isfinite(mean)
        diffs.append((bg - mean)[ok])
        corr.append(np.corrcoef(bg[ok], mean[ok])[0, 1])
    d = np.concatenate(diffs)
    assert d.mean() == pytest.approx(info.scene["background_bias_k"], abs=1.5)
    assert np.median(corr) > 0.6
    assert np.isfinite(_series(info, "lst_background").read(info.dates[0])).all()  # full coverage


def test_ndvi_follows_the_mod13_calendar(medium_scene):
    info = medium_scene
    ndvi = _series(info, "ndvi")
    assert [d.isoformat() for d in ndvi.dates] == info.scene["ndvi_dates"]
    for d in ndvi.dates:
        assert (d.timetuple().tm_yday - 1) % 16 == 0
        assert read_date_item(ndvi.path(d)) == d
    assert ndvi.dates[0] <= info.config.start < ndvi.dates[0] + dt.timedelta(days=16)
    assert ndvi.dates[-1] <= info.config.end
    assert composite_start(dt.date(2019, 6, 1)) == dt.date(2019, 5, 25)  # DOY 145
    assert composite_start(dt.date(2019, 12, 31)) == dt.date(2019, 12, 19)  # DOY 353
    assert composite_start(dt.date(2020, 1, 3)) == dt.date(2020, 1, 1)
    # usable as a 16-day composite predictor for every day of the scene
    src = LayerSource.open(info.paths["ndvi"], max_age_days=16)
    assert all(src.covers(d) for d in info.dates)


def test_truth_is_not_a_function_of_the_predictors(medium_scene):
    """A flexible regression of the true SSM on (true all-weather LST, NDVI, albedo) leaves
    a substantial residual: the truth comes from a water balance, not from the predictors."""
    info = medium_scene
    ndvi = LayerSource.open(info.paths["ndvi"], max_age_days=16)
    r2 = []
    for day in info.dates[::3]:
        y = _series(info, "truth_ssm").read(day)
        vs = [_series(info, "truth_lst").read(day), ndvi.read(day), _series(info, "albedo").read(day)]
        ok = np.isfinite(y) & np.all([np.isfinite(v) for v in vs], axis=0)
        z = [(v[ok] - v[ok].mean()) / v[ok].std() for v in vs]
        cols = [np.ones(ok.sum()), *z] + [z[i] * z[j] for i in range(3) for j in range(i, 3)]
        x = np.column_stack(cols)
        beta, *_ = np.linalg.lstsq(x, y[ok], rcond=None)
        res = y[ok] - x @ beta
        r2.append(1 - res.var() / y[ok].var())
    assert max(r2) < 0.9
    assert np.mean(r2) < 0.8


# ---------------------------------------------------------------------------------------
# run control
# ---------------------------------------------------------------------------------------


def test_progress_and_cancellation(tmp_path):
    seen: list[float] = []
    small_scene(tmp_path / "ok", days=2, spinup_days=1, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(100.0)
    calls = {"n": 0}

    def cancel_after_a_few() -> bool:
        calls["n"] += 1
        return calls["n"] > 6

    out = tmp_path / "cancelled"
    with pytest.raises(Cancelled):
        small_scene(out, days=5, spinup_days=1, is_cancelled=cancel_after_a_few)
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_existing_folders_are_respected(tmp_path):
    out = tmp_path / "user"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SceneError, match="not empty"):
        small_scene(out, days=1, spinup_days=0)
    with pytest.raises(SceneError, match="scene.json"):
        generate_scene(SceneConfig(width_km=72, days=1, spinup_days=0), out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    first = small_scene(tmp_path / "s", days=2, spinup_days=0, n_stations=2)
    again = generate_scene(first.config.with_(days=1), tmp_path / "s", overwrite=True)
    assert len(_series(again, "truth_ssm")) == 1  # the old days are gone
    assert scene_paths(tmp_path / "s")["scene_json"].exists()


def test_other_places(tmp_path):
    for place in ("loess", "south"):
        info = small_scene(tmp_path / place, place=place, days=2, spinup_days=2, n_stations=3)
        ssm = _series(info, "truth_ssm").read(info.dates[-1])
        assert np.isfinite(ssm).mean() > 0.9
        assert info.scene["terrain"]["source"] == "fractal"
        assert info.scene["centre_lon"] == scene_mod.PLACES[place].lon


def test_numpy_fallback_gives_the_same_scene(tmp_path):
    """Without numba (the numpy fallbacks of every kernel) the scene is the same up to
    float rounding."""
    from ssm_downscaling.core.accel import HAVE_NUMBA, numba_disabled

    if not HAVE_NUMBA:
        pytest.skip("numba is not installed")
    fast = small_scene(tmp_path / "numba", days=2, spinup_days=2)
    with numba_disabled():
        slow = small_scene(tmp_path / "numpy", days=2, spinup_days=2)
    for day in fast.dates:
        for key, tol in (("truth_ssm", 1e-4), ("truth_lst", 0.01), ("ssm_coarse", 1e-4), ("lst_background", 0.01)):
            a = _series(fast, key).read(day)
            b = _series(slow, key).read(day)
            np.testing.assert_allclose(a, b, atol=tol, equal_nan=True, err_msg=f"{key} {day}")
        ca = _series(fast, "truth_cloud").read(day)
        cb = _series(slow, "truth_cloud").read(day)
        assert (ca == cb).mean() > 0.999
