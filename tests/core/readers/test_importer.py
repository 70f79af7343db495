"""The import driver: a bad batch (wrong product, all fill, no overlap, truncated, no
date) imports the rest and says why each file was skipped; outputs follow DESIGN.md 3."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest

LPRM = "amsr2/LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4"
CCI6 = "esa_cci/ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20160606000000-fv05.2.nc"
CCI7 = "esa_cci/ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20160607000000-fv05.2.nc"


@pytest.mark.realdata
def test_bad_batch_imports_the_rest(shared_data, tmp_path):
    from ssm_downscaling.core.grid import Grid
    from ssm_downscaling.core.readers import ImportOptions, import_product
    from ssm_downscaling.core.series import DailySeries, read_date_item

    inp = tmp_path / "in"
    inp.mkdir()
    good = [inp / "a" / CCI6.split("/")[1], inp / "a" / CCI7.split("/")[1]]
    (inp / "a").mkdir()
    os.symlink(shared_data / CCI6, good[0])
    os.symlink(shared_data / CCI7, good[1])
    wrong = inp / "ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20160608000000-fv05.2.nc"
    os.symlink(shared_data / LPRM, wrong)  # an LPRM file under a CCI name: no 'sm'
    trunc = inp / "ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20160609000000-fv05.2.nc"
    trunc.write_bytes((shared_data / CCI6).read_bytes()[:5000])
    nodate = inp / "soil_moisture.nc"
    os.symlink(shared_data / CCI6, nodate)
    grid = Grid.from_bounds(4326, (100.0, 30.0, 110.0, 40.0), 0.25)
    s = import_product([*good, wrong, trunc, nodate], tmp_path / "out", ImportOptions("esa_cci"), grid)
    assert s.days == [dt.date(2016, 6, 6), dt.date(2016, 6, 7)]
    why = {os.path.basename(f): w for f, w in s.skipped}
    assert "has none of the variables sm" in why[wrong.name]
    assert why[trunc.name]  # truncated: named, whatever GDAL's words
    assert why[nodate.name] == "no date in the file name"
    assert "skipped soil_moisture.nc: no date" in s.text()
    series = DailySeries.from_folder(tmp_path / "out")
    assert [p.name for p in series.files.values()] == ["ssm_2016-06-06.tif", "ssm_2016-06-07.tif"]
    assert read_date_item(series.path(dt.date(2016, 6, 6))) == dt.date(2016, 6, 6)
    from osgeo import gdal

    ds = gdal.Open(str(series.path(dt.date(2016, 6, 6))))
    b = ds.GetRasterBand(1)
    assert b.DataType == gdal.GDT_Float32 and b.GetNoDataValue() == -9999
    assert "COMPRESS=DEFLATE" in str(ds.GetMetadata("IMAGE_STRUCTURE")) or ds.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") == "DEFLATE"
    # the target grid is a window of the CCI grid: values copied exactly
    from ssm_downscaling.core.readers.esa_cci import read_esa_cci

    native = read_esa_cci(shared_data / CCI6)
    win = native.grid.window_of(grid)
    ref = native.data[win[0] : win[0] + win[2], win[1] : win[1] + win[3]]
    assert np.array_equal(series.read(dt.date(2016, 6, 6)), ref, equal_nan=True)


@pytest.mark.realdata
def test_no_overlap_and_all_fill(shared_data, tmp_path):
    from ssm_downscaling.core.grid import Grid
    from ssm_downscaling.core.readers import ImportOptions, ProductError, import_product

    # an ocean-only target (central Pacific): every value is fill there
    grid = Grid.from_bounds(4326, (-160.0, -10.0, -150.0, 0.0), 0.25)
    with pytest.raises(ProductError, match="nothing was imported.*no valid value over the target grid"):
        import_product([shared_data / LPRM], tmp_path / "o", ImportOptions("lprm"), grid)
    # a MODIS tile far from the target
    modis = shared_data / "modis/MOD11A1.A2021227.h11v05.061.2021228105320.hdf"
    grid = Grid.from_bounds(4326, (100.0, 30.0, 101.0, 31.0), 0.01)
    with pytest.raises(ProductError, match="does not overlap the target grid"):
        import_product([modis], tmp_path / "m", ImportOptions("mod11_lst"), grid)


def test_all_fill_tile_skipped(tmp_path):
    pytest.importorskip("h5py")
    from layouts import write_mcd43a3

    from ssm_downscaling.core.readers import ImportOptions, ProductError, import_product

    p = write_mcd43a3(tmp_path)
    import h5py

    with h5py.File(p, "r+") as f:
        for k in ("Albedo_WSA_shortwave", "Albedo_BSA_shortwave"):
            f["MOD_Grid_BRDF"][k][...] = 32767
    with pytest.raises(ProductError, match="all fill or rejected by quality"):
        import_product([p], tmp_path / "o", ImportOptions("mcd43_albedo"))


def test_output_folder_must_not_hold_inputs(tmp_path):
    from ssm_downscaling.core.errors import SsmError
    from ssm_downscaling.core.readers import ImportOptions, import_product

    f = tmp_path / "x_2019-01-01.tif"
    f.write_bytes(b"")
    with pytest.raises(SsmError, match="holds input files"):
        import_product([f], tmp_path, ImportOptions("generic"))


def test_options_validated():
    from ssm_downscaling.core.readers import ImportOptions, ProductError

    with pytest.raises(ProductError, match="product: 'modis' is not one of"):
        ImportOptions("modis")
    with pytest.raises(ProductError, match="diffuse_fraction"):
        ImportOptions("mcd43_albedo", diffuse_fraction=1.5)
    assert ImportOptions("mod11_lst", lst_night=True).out_prefix == "lst_night"


def test_cancel_leaves_no_partial_file(shared_data, tmp_path):
    from ssm_downscaling.core.errors import Cancelled
    from ssm_downscaling.core.readers import ImportOptions, import_product

    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        import_product([shared_data / CCI6, shared_data / CCI7], tmp_path / "o", ImportOptions("esa_cci"),
                       is_cancelled=cancel)
    assert not list((tmp_path / "o").glob(".*part*")) if (tmp_path / "o").exists() else True


@pytest.mark.realdata
def test_lprm_pass_choice(shared_data, tmp_path):
    from ssm_downscaling.core.readers import ImportOptions, ProductError, import_product

    asc = tmp_path / "in" / "LPRM-AMSR2_L3_A_SOILM3_V001_20150401120000.nc4"
    asc.parent.mkdir()
    os.symlink(shared_data / LPRM, asc)  # the descending file under an ascending name
    with pytest.raises(ProductError, match="pass D left out"):
        import_product([shared_data / LPRM], tmp_path / "a", ImportOptions("lprm", overpass_pass="A"))
    s = import_product([asc, shared_data / LPRM], tmp_path / "b", ImportOptions("lprm", overpass_pass="D"))
    assert [os.path.basename(f) for f, _ in s.skipped] == [asc.name] and len(s.files_read) == 1
    s = import_product([asc, shared_data / LPRM], tmp_path / "c", ImportOptions("lprm"))
    assert len(s.files_read) == 2 and len(s.written) == 1
