"""Reanalysis backgrounds on the real ERA5 netCDF, ERA-Interim netCDF and GRIB samples
(packed values, 0-360 longitudes, time steps as bands), overpass-time step selection,
and GLDAS Noah in its documented layout."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

ERA5 = "reanalysis/era5_swvl1_lsm_20100101_example.nc"
ERAI = "reanalysis/era_interim_tibet.nc"
GRIB = "reanalysis/erainterim_swvl1_lsm_example.grb"


def _nc(path, var):
    netCDF4 = pytest.importorskip("netCDF4")
    with netCDF4.Dataset(path) as f:
        return np.ma.filled(f[var][...].astype(np.float64), np.nan), f


@pytest.mark.realdata
def test_era5_netcdf_unpacked_rolled_to_180(shared_data):
    from ssm_downscaling.core.readers.reanalysis import read_steps

    path = shared_data / ERA5
    steps = read_steps(path, "swvl1")
    assert [s.time for s in steps] == [dt.datetime(2010, 1, 1, h) for h in (0, 6, 12, 18)]
    g = steps[0].grid
    assert g.shape == (37, 72) and g.transform == (-182.5, 5.0, 0.0, 92.5, 0.0, -5.0)
    ref, _ = _nc(path, "swvl1")  # netCDF4 applies scale_factor/add_offset: the reference
    # longitude 0 (file column 0) is at column 36 after the roll; 180 E (file column 36) at column 0
    assert steps[1].data[10, 36] == pytest.approx(ref[1, 10, 0], abs=1e-6)
    assert steps[1].data[10, 0] == pytest.approx(ref[1, 10, 36], abs=1e-6)
    assert steps[1].data[10, 71] == pytest.approx(ref[1, 10, 35], abs=1e-6)


@pytest.mark.realdata
def test_era_interim_t2m_kelvin_and_regional_window(shared_data):
    from ssm_downscaling.core.readers.reanalysis import read_steps

    path = shared_data / ERAI
    steps = read_steps(path, "t2m")
    assert len(steps) == 4 and steps[0].time == dt.datetime(2012, 6, 1, 0)
    ref, _ = _nc(path, "t2m")
    assert np.allclose(steps[2].data, ref[2], atol=1e-3, equal_nan=True)
    assert 200 < np.nanmin(steps[0].data) and np.nanmax(steps[0].data) < 330
    assert steps[0].grid.transform[0] == pytest.approx(59.625 - 0.0, abs=0.5)


@pytest.mark.realdata
def test_grib_steps_from_band_metadata(shared_data):
    from ssm_downscaling.core.readers.reanalysis import read_steps

    steps = read_steps(shared_data / GRIB, "swvl1")
    assert [s.time.hour for s in steps] == [0, 6, 12, 18] and steps[0].time.date() == dt.date(2000, 1, 1)
    from osgeo import gdal

    ds = gdal.Open(str(shared_data / GRIB))
    assert ds.GetRasterBand(3).GetMetadataItem("GRIB_ELEMENT") == "SWVL1"
    assert np.allclose(steps[1].data, ds.GetRasterBand(3).ReadAsArray(), equal_nan=True)
    with pytest.raises(Exception, match="no GRIB band of skt"):
        read_steps(shared_data / GRIB, "skt")


@pytest.mark.realdata
def test_overpass_step_per_longitude(shared_data):
    from ssm_downscaling.core.readers.reanalysis import at_overpass, read_steps

    steps = read_steps(shared_data / ERA5, "swvl1")
    day = dt.date(2010, 1, 1)
    near = at_overpass(steps, day, 10.5)
    # by hand: lon 0 -> 10:30 UTC -> 12 UTC step; lon 90 E -> 04:30 UTC -> 06 UTC; lon 90 W -> 16:30 -> 18 UTC
    col = {0.0: 36, 90.0: 54, -90.0: 18}
    assert np.array_equal(near.data[:, col[0.0]], steps[2].data[:, col[0.0]], equal_nan=True)
    assert np.array_equal(near.data[:, col[90.0]], steps[1].data[:, col[90.0]], equal_nan=True)
    assert np.array_equal(near.data[:, col[-90.0]], steps[3].data[:, col[-90.0]], equal_nan=True)
    lin = at_overpass(steps, day, 10.5, "linear")
    want = 0.25 * steps[1].data[:, 36] + 0.75 * steps[2].data[:, 36]  # (10.5 - 6) / 6 = 0.75
    assert np.allclose(lin.data[:, 36], want, atol=1e-6, equal_nan=True)
    tight = at_overpass(steps, day, 10.5, max_gap_hours=1.0)
    assert np.isnan(tight.data[:, 36]).all()  # 10:30 is 1.5 h from the 12 UTC step


@pytest.mark.realdata
def test_reanalysis_import_onto_a_grid(shared_data, tmp_path):
    from ssm_downscaling.core.grid import Grid
    from ssm_downscaling.core.readers import ImportOptions, import_product
    from ssm_downscaling.core.series import read_date_item, read_raster

    grid = Grid.from_bounds(4326, (85.0, 28.0, 95.0, 34.0), 0.1)
    s = import_product([shared_data / ERAI], tmp_path, ImportOptions("reanalysis", reanalysis_variable="t2m"), grid)
    assert s.days == [dt.date(2012, 6, 1)] and read_date_item(s.written[0]) == dt.date(2012, 6, 1)
    arr = read_raster(s.written[0])
    assert np.isfinite(arr).all() and 230 < arr.min() and arr.max() < 320


def test_gldas_documented_layout(tmp_path):
    pytest.importorskip("netCDF4")
    from layouts import write_gldas

    from ssm_downscaling.core.readers.reanalysis import read_steps

    p = write_gldas(tmp_path)
    (s,) = read_steps(p, "AvgSurfT_inst")
    assert s.time == dt.datetime(2019, 6, 1, 3) and s.grid.transform == (100.0, 0.25, 0.0, 32.0, 0.0, -0.25)
    assert s.data[-1, 0] == 300.0  # southernmost row of the (ascending) file is the bottom row
    assert np.isnan(s.data[0, -1]) and np.nanmin(s.data) == 290.0


def test_wrong_product_and_truncated_file_named(tmp_path, shared_data):
    from ssm_downscaling.core.readers import ProductError
    from ssm_downscaling.core.readers.lprm import read_lprm
    from ssm_downscaling.core.readers.reanalysis import read_steps

    with pytest.raises(ProductError, match="esa.*has none of the variables soil_moisture_c1|soil_moisture_c1"):
        read_lprm(shared_data / "esa_cci/ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20160606000000-fv05.2.nc")
    trunc = tmp_path / "era5_2010-01-01.nc"
    trunc.write_bytes((shared_data / ERA5).read_bytes()[:3000])
    with pytest.raises(ProductError, match="era5_2010-01-01.nc"):
        read_steps(trunc, "swvl1")


def test_era5_expver_merged(tmp_path):
    netCDF4 = pytest.importorskip("netCDF4")
    from ssm_downscaling.core.readers.reanalysis import read_steps

    p = tmp_path / "era5_skt_202301.nc"
    with netCDF4.Dataset(p, "w", format="NETCDF4") as f:
        for name, n in (("time", 2), ("expver", 2), ("latitude", 3), ("longitude", 4)):
            f.createDimension(name, n)
        t = f.createVariable("time", "i4", ("time",))
        t.units = "hours since 1900-01-01 00:00:00.0"
        t[:] = [1078776, 1078782]  # (2023-01-25 - 1900-01-01) = 44949 days x 24 h: 00 and 06 UTC
        f.createVariable("expver", "i4", ("expver",))[:] = [1, 5]
        f.createVariable("latitude", "f4", ("latitude",))[:] = [40.0, 39.75, 39.5]
        f.createVariable("longitude", "f4", ("longitude",))[:] = [100.0, 100.25, 100.5, 100.75]
        v = f.createVariable("skt", "f4", ("time", "expver", "latitude", "longitude"), fill_value=-32767.0)
        v.units = "K"
        data = np.full((2, 2, 3, 4), -32767.0, dtype=np.float32)
        data[0, 0] = 270.0  # the first step is final ERA5 (expver 1)
        data[1, 1] = 275.0  # the second only preliminary ERA5T (expver 5)
        v[:] = data
    steps = read_steps(p, "skt")
    assert [s.time for s in steps] == [dt.datetime(2023, 1, 25, 0), dt.datetime(2023, 1, 25, 6)]
    assert np.all(steps[0].data == 270.0) and np.all(steps[1].data == 275.0)


@pytest.mark.realdata
def test_steps_pooled_across_files_at_the_date_line(shared_data, tmp_path):
    """West of 165 W a 10:30 overpass falls after 21:30 UTC: the next day's 00 UTC step
    (in the next file) is nearer than 18 UTC."""
    netCDF4 = pytest.importorskip("netCDF4")
    from ssm_downscaling.core.readers import ImportOptions, import_product
    from ssm_downscaling.core.series import read_raster

    nxt = tmp_path / "in" / "era5_swvl1_20100102.nc"
    nxt.parent.mkdir()
    with netCDF4.Dataset(shared_data / ERA5) as src, netCDF4.Dataset(nxt, "w", format="NETCDF3_CLASSIC") as f:
        f.createDimension("longitude", 72)
        f.createDimension("latitude", 37)
        f.createDimension("time", 1)
        f.createVariable("longitude", "f4", ("longitude",))[:] = src["longitude"][:]
        f.createVariable("latitude", "f4", ("latitude",))[:] = src["latitude"][:]
        t = f.createVariable("time", "i4", ("time",))
        t.units = "hours since 1900-01-01 00:00:00.0"
        t[:] = [int(src["time"][0]) + 24]
        v = f.createVariable("swvl1", "f4", ("time", "latitude", "longitude"))
        v.units = "m**3 m**-3"
        v[:] = np.full((1, 37, 72), 0.5, dtype=np.float32)
    s = import_product([shared_data / ERA5, nxt], tmp_path / "out",
                       ImportOptions("reanalysis", reanalysis_variable="swvl1"), start=dt.date(2010, 1, 1),
                       end=dt.date(2010, 1, 1))
    arr = read_raster(s.written[0])
    # column 2 is 170 W (grid from -182.5): 10.5 + 170/15 = 21.83 UTC -> 00 UTC of 2 January (2.2 h) beats 18 UTC (3.8 h)
    assert np.allclose(arr[:, 2], 0.5)
    # column 18 is 90 W: 16.5 UTC -> 18 UTC of 1 January
    assert not np.allclose(arr[:, 18], 0.5)
