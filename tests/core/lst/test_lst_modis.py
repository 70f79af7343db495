"""MOD11A1 reading: QC bits, scale and fill, on hand-made codes and the real tiles."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ssm_downscaling.core.errors import RasterReadError
from ssm_downscaling.core.grid import Grid
from ssm_downscaling.core.lst import gapfill_series, qc_keep, read_mod11a1
from ssm_downscaling.core.lst.modis import is_mod11, subdataset
from ssm_downscaling.core.series import read_raster, write_raster

TILE = "MOD11A1.A2019305.h14v09.006.hdf"


def test_qc_bits():
    #          good  cloud  other  emis.02  err<=2K  err<=3K  err<=3K+emis.02  err>3K
    codes = np.array([0, 2, 3, 17, 65, 129, 145, 193], dtype=np.uint8)
    np.testing.assert_array_equal(qc_keep(codes), [1, 0, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(qc_keep(codes, max_lst_error_k=1), [1, 0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(qc_keep(codes, max_lst_error_k=3), [1, 0, 0, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(qc_keep(codes, max_emis_error=0.01), [1, 0, 0, 0, 1, 0, 0, 0])


def test_is_mod11():
    assert is_mod11("x/MOD11A1.A2019305.h14v09.006.hdf") and is_mod11("MYD11A1.A2019001.h25v05.061.hdf")
    assert not is_mod11("MOD13A2.A2021225.h11v06.061.hdf") and not is_mod11("lst_2019-06-01.tif")


@pytest.mark.realdata
def test_read_real_tile_scale_fill_and_qc(shared_data):
    path = shared_data / "modis" / TILE
    day = read_mod11a1(path)
    raw = gdal.Open(subdataset(path, "LST_Day_1km")).ReadAsArray()
    qc = gdal.Open(subdataset(path, "QC_Day")).ReadAsArray()
    assert day.lst.shape == (1200, 1200) and day.lst.dtype == np.float32
    ok = np.isfinite(day.lst)
    np.testing.assert_allclose(day.lst[ok], raw[ok] * 0.02, rtol=1e-6)
    assert not ok[raw == 0].any()  # fill
    assert not ok[(qc & 3) >= 2].any()  # not produced
    assert not ok[(qc >> 6) >= 2].any()  # LST error > 2 K rejected by default
    assert 0.15 < day.valid_fraction <= float((raw > 0).mean())
    assert 270 < float(np.nanmin(day.lst)) and float(np.nanmax(day.lst)) < 340
    strict = read_mod11a1(path, max_lst_error_k=1)
    assert np.isfinite(strict.lst).sum() < ok.sum()


@pytest.mark.realdata
def test_mod11_files_in_a_series_folder(shared_data, tmp_path):
    src = tmp_path / "modis"
    src.mkdir()
    (src / TILE).symlink_to(shared_data / "modis" / TILE)
    out = tmp_path / "out"
    summary = gapfill_series(src, None, out / "lst", out / "flags", method="spatial", idw_radius_km=5.0)
    assert summary.days_processed == 1
    res = read_raster(out / "lst" / "lst_2019-11-01.tif")
    kept = read_mod11a1(shared_data / "modis" / TILE).lst
    ok = np.isfinite(kept)
    np.testing.assert_array_equal(res[ok], kept[ok])
    # one day without NDVI: only pixels observed in the period count as land, nothing to fill
    assert np.isfinite(res).sum() == ok.sum()
    # an NDVI raster declares the land: the gaps near clear pixels are filled
    grid = Grid.from_raster(subdataset(shared_data / "modis" / TILE, "LST_Day_1km"))
    write_raster(tmp_path / "ndvi.tif", np.full(grid.shape, 0.5, np.float32), grid)
    summary = gapfill_series(
        src, None, out / "lst2", out / "flags2", ndvi=tmp_path / "ndvi.tif", method="spatial", idw_radius_km=5.0
    )
    res = read_raster(out / "lst2" / "lst_2019-11-01.tif")
    np.testing.assert_array_equal(res[ok], kept[ok])
    assert np.isfinite(res).sum() > 1.1 * ok.sum() and summary.pixels_filled > 0


def test_not_a_mod11_file(tmp_path):
    p = tmp_path / "MOD11A1.A2019001.h00v00.hdf"
    with pytest.raises(RasterReadError):
        subdataset(p, "LST_Day_1km")
