"""The series driver on folders: outputs, metadata, coverage table, bad inputs, cancel."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ssm_downscaling.core.downscale import build_membership, downscale_series
from ssm_downscaling.core.downscale.run import FLAG_LEGEND
from ssm_downscaling.core.errors import Cancelled, GridError, SeriesError, SsmError
from ssm_downscaling.core.grid import Grid
from ssm_downscaling.core.series import read_raster, write_day, write_raster

DAYS = [dt.date(2019, 6, 1) + dt.timedelta(days=i) for i in range(3)]


@pytest.fixture
def folders(tmp_path, fine_grid, coarse_full, make_world):
    """Coarse SSM (EASE2 window, a seam on day 2), daily LST and albedo, one NDVI composite, DEM."""
    world = make_world(fine_grid)
    m = build_membership(fine_grid, coarse_full)
    lst_c, _ = m.aggregate(world["lst"])
    inp = tmp_path / "in"
    for i, d in enumerate(DAYS):
        lst = world["lst"] + 2.0 * i
        y = (0.3 - 0.004 * (lst_c + 2.0 * i - 305)).astype(np.float32)
        if i == 1:
            y[1, 1] = np.nan
        write_day(inp / "ssm_coarse", "ssm_coarse", d, y, m.coarse)
        write_day(inp / "lst", "lst", d, lst, fine_grid)
        write_day(inp / "albedo", "albedo", d, world["albedo"], fine_grid)
    write_day(inp / "ndvi", "ndvi", DAYS[0], world["ndvi"], fine_grid)
    write_raster(inp / "dem.tif", world["dem"], fine_grid)
    return {"ssm": inp / "ssm_coarse", "lst": inp / "lst", "ndvi": inp / "ndvi", "albedo": inp / "albedo",
            "dem": inp / "dem.tif", "m": m, "tmp": tmp_path}


def _run(f, out: Path, **kw):
    return downscale_series(f["ssm"], f["lst"], f["ndvi"], f["albedo"], out / "ssm", out / "flags", out / "unc",
                            dem=f["dem"], coverage_csv=out / "coverage.csv", **kw)


def test_series_writes_days_flags_uncertainty_and_coverage(folders):
    out = folders["tmp"] / "out"
    s = _run(folders, out)
    assert s.days == DAYS and not s.skipped
    names = sorted(p.name for p in (out / "ssm").iterdir())
    assert names == [f"ssm_{d}.tif" for d in DAYS]
    assert sorted(p.name for p in (out / "flags").iterdir()) == [f"ssm_flags_{d}.tif" for d in DAYS]
    ds = gdal.Open(str(out / "flags" / f"ssm_flags_{DAYS[1]}.tif"))
    assert ds.GetMetadataItem("DATE") == DAYS[1].isoformat()
    assert ds.GetRasterBand(1).GetDescription() == FLAG_LEGEND
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Byte and ds.GetRasterBand(1).GetNoDataValue() == 255
    ds = None
    m = folders["m"]
    for d in DAYS:  # observed cells average back to the coarse value (as read back from disk)
        ssm = read_raster(out / "ssm" / f"ssm_{d}.tif")
        coarse = read_raster(folders["ssm"] / f"ssm_coarse_{d}.tif")
        mean, count = m.aggregate(ssm)
        ok = np.isfinite(coarse) & (count > 0)
        np.testing.assert_allclose(mean[ok], coarse[ok], atol=1e-6)
        unc = read_raster(out / "unc" / f"ssm_uncertainty_{d}.tif")
        assert (unc[np.isfinite(ssm)] > 0).all()
    flags = read_raster(out / "flags" / f"ssm_flags_{DAYS[1]}.tif")
    np.testing.assert_array_equal(flags == 1, m.index == m.coarse.width + 1)
    rows = list(csv.DictReader(open(out / "coverage.csv")))
    assert [r["date"] for r in rows] == [d.isoformat() for d in DAYS]
    assert all(float(r["estimated_pct"]) == 100.0 for r in rows)
    assert float(rows[1]["seam_filled_pct"]) > 0 and float(rows[0]["seam_filled_pct"]) == 0
    assert s.mean_estimated_pct == 100.0


def test_date_range_and_reference_grid(folders):
    out = folders["tmp"] / "out"
    s = _run(folders, out, start=DAYS[1], end=DAYS[1], method="bilinear")
    assert s.days == [DAYS[1]]
    ref = folders["tmp"] / "ref.tif"
    g = Grid.from_raster(folders["dem"])
    coarse_ref = g.window(0, 0, g.height // 2, g.width // 2)
    coarse_ref = Grid(g.crs_wkt, (coarse_ref.transform[0], 2000.0, 0.0, coarse_ref.transform[3], 0.0, -2000.0),
                      g.width // 2, g.height // 2)
    write_raster(ref, np.zeros(coarse_ref.shape, np.float32), coarse_ref)
    s2 = downscale_series(folders["ssm"], folders["lst"], folders["ndvi"], folders["albedo"], out / "s2", out / "f2",
                          reference=ref, method="gwr", end=DAYS[0])
    assert s2.fine == coarse_ref
    assert read_raster(out / "s2" / f"ssm_{DAYS[0]}.tif").shape == coarse_ref.shape


def _nothing_written(out: Path) -> bool:
    return not out.exists() or not any(out.rglob("*"))


def test_predictor_not_covering_the_grid_is_a_clear_error(folders, fine_grid):
    far = Grid(fine_grid.crs_wkt, (5e6, 1000.0, 0.0, 5e6, 0.0, -1000.0), 50, 50)
    bad = folders["tmp"] / "ndvi_elsewhere.tif"
    write_raster(bad, np.full(far.shape, 0.5, np.float32), far)
    folders["ndvi"] = bad
    out = folders["tmp"] / "out"
    with pytest.raises(GridError, match="ndvi_elsewhere.tif.*NDVI does not cover the 1 km grid"):
        _run(folders, out)
    assert _nothing_written(out)


def test_coarse_product_in_an_unknown_crs_is_a_clear_error(folders):
    bad_dir = folders["tmp"] / "ssm_nocrs"
    bad_dir.mkdir()
    src = gdal.Open(str(folders["ssm"] / f"ssm_coarse_{DAYS[0]}.tif"))
    ds = gdal.GetDriverByName("GTiff").Create(str(bad_dir / f"sm_{DAYS[0]}.tif"), src.RasterXSize, src.RasterYSize, 1, gdal.GDT_Float32)
    ds.SetGeoTransform(src.GetGeoTransform())  # no projection
    ds.GetRasterBand(1).WriteArray(src.GetRasterBand(1).ReadAsArray())
    ds = src = None
    folders["ssm"] = bad_dir
    out = folders["tmp"] / "out"
    with pytest.raises(GridError, match="ssm_nocrs.*no coordinate reference system"):
        _run(folders, out)
    assert _nothing_written(out)


def test_no_common_dates_is_a_clear_error(folders):
    late = folders["tmp"] / "lst_2020"
    for d in DAYS:
        src = read_raster(folders["lst"] / f"lst_{d}.tif")
        write_day(late, "lst", d.replace(year=2020), src, Grid.from_raster(folders["lst"] / f"lst_{d}.tif"))
    folders["lst"] = late
    out = folders["tmp"] / "out"
    with pytest.raises(SeriesError, match="No common dates.*all-weather LST 2020-06-01 to 2020-06-03"):
        _run(folders, out)
    assert _nothing_written(out)


def test_outputs_may_not_overwrite_inputs(folders):
    with pytest.raises(SsmError, match="output folder is an input"):
        downscale_series(folders["ssm"], folders["lst"], folders["ndvi"], folders["albedo"], folders["lst"],
                         folders["tmp"] / "flags")
    before = sorted(p.name for p in folders["lst"].iterdir())
    assert before == [f"lst_{d}.tif" for d in DAYS]
    with pytest.raises(SsmError, match="different folders"):
        downscale_series(folders["ssm"], folders["lst"], folders["ndvi"], folders["albedo"], folders["tmp"] / "o",
                         folders["tmp"] / "o")


def test_cancel_leaves_only_complete_files(folders):
    out = folders["tmp"] / "out"
    with pytest.raises(Cancelled):
        _run(folders, out, is_cancelled=lambda: True)
    assert _nothing_written(out)
    state = {"writes": 0}

    def progress(p):
        state["p"] = p

    def cancel():  # stop once the first day has been written
        return (out / "ssm" / f"ssm_{DAYS[0]}.tif").exists()

    with pytest.raises(Cancelled):
        _run(folders, out, is_cancelled=cancel, progress=progress)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not any(p.name.startswith(".") for p in files)  # no temporary leftovers
    assert not (out / "coverage.csv").exists()  # the table only appears after a complete run
    for p in files:
        assert gdal.Open(str(p)) is not None


def test_bandwidth_is_in_metres_on_a_geographic_fine_grid(make_world):
    """A 1 km grid in degrees: distances between cell centres are metres (equal-area
    projection), so a fixed 100 km bandwidth is 100 km, not 100 degrees."""
    import datetime as dt

    from ssm_downscaling.core.downscale import build_membership, downscale_arrays
    from ssm_downscaling.core.grid import Grid, ease2_global, to_wkt

    fine = Grid(to_wkt(4326), (89.4, 0.01, 0.0, 30.4, 0.0, -0.01), 120, 100)
    world = {k: v for k, v in make_world(fine, seed=3).items() if k in ("lst", "ndvi", "albedo")}
    m = build_membership(fine, ease2_global(36))
    lst_c, _ = m.aggregate(world["lst"])
    y = {dt.date(2019, 6, d): 0.9 - 0.002 * lst_c for d in (1, 2)}
    res = downscale_arrays(y, world, fine, m.coarse, "gwr", bandwidth=100e3)
    r = next(iter(res.values()))
    assert r.stats["bandwidth_km"] == 100.0
    auto = downscale_arrays(y, world, fine, m.coarse, "gwr")
    bw = next(iter(auto.values())).stats["bandwidth_km"]
    assert bw == float("inf") or 10 < bw < 5000
