"""Daily-series discovery, reading and atomic writing (core/series.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from osgeo import gdal

from ssm_downscaling.core.errors import RasterReadError, SeriesError
from ssm_downscaling.core.grid import Grid
from ssm_downscaling.core.series import (
    NODATA,
    DailySeries,
    LayerSource,
    RasterWriter,
    creation_options,
    date_from_name,
    day_filename,
    read_date_item,
    read_raster,
    write_day,
    write_raster,
)

LAEA = "+proj=laea +lat_0=30 +lon_0=90 +datum=WGS84 +units=m +no_defs"
D = dt.date


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ssm_2019-06-01.tif", D(2019, 6, 1)),
        ("lst_20190601.tif", D(2019, 6, 1)),
        ("SM_2019305.tif", D(2019, 11, 1)),
        ("MOD11A1.A2019305.h14v09.006.hdf", D(2019, 11, 1)),
        ("MOD11A1.A2021227.h11v05.061.2021228105320.hdf", D(2021, 8, 15)),
        ("LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4", D(2015, 4, 1)),
        ("ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20160607000000-fv05.2.nc", D(2016, 6, 7)),
        ("x_2020366.tif", D(2020, 12, 31)),  # leap year
        ("x_2019366.tif", None),  # not a leap year
        ("x_20191301.tif", None),  # month 13
        ("dem.tif", None),
        ("tile_h11v05.tif", None),
    ],
)
def test_date_from_name(name, expected):
    assert date_from_name(name) == expected


def _grid() -> Grid:
    return Grid.from_bounds(LAEA, (0, 0, 5000, 4000), 1000)


def test_write_day_naming_metadata_and_format(tmp_path):
    g = _grid()
    arr = np.linspace(0.1, 0.4, 20, dtype=np.float32).reshape(4, 5)
    arr[0, 0] = np.nan
    p = write_day(tmp_path, "ssm", D(2019, 6, 1), arr, g, description="soil moisture (m3/m3)")
    assert p.name == day_filename("ssm", D(2019, 6, 1)) == "ssm_2019-06-01.tif"
    ds = gdal.Open(str(p))
    b = ds.GetRasterBand(1)
    assert b.DataType == gdal.GDT_Float32
    assert b.GetNoDataValue() == NODATA
    assert ds.GetMetadataItem("DATE") == "2019-06-01"
    assert ds.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") == "DEFLATE"
    assert b.GetBlockSize() == [16, 16]  # tiled
    assert b.GetDescription() == "soil moisture (m3/m3)"
    raw = b.ReadAsArray()
    assert raw[0, 0] == NODATA
    ds = None
    back = read_raster(p)
    assert np.isnan(back[0, 0]) and np.allclose(back[1:], arr[1:])
    assert read_date_item(p) == D(2019, 6, 1)
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_writer_is_atomic_on_failure(tmp_path):
    g = _grid()
    target = tmp_path / "ssm_2019-06-02.tif"
    with pytest.raises(RuntimeError, match="boom"), RasterWriter(target, g, "float32", date=D(2019, 6, 2)) as w:
        w.write(np.zeros((2, 5), np.float32), 0)
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_block_writer_uint8_flags(tmp_path):
    g = Grid.from_bounds(LAEA, (0, 0, 300_000, 300_000), 1000)
    flags = (np.arange(g.size) % 4).astype(np.uint8).reshape(g.shape)
    flags[0, :] = 255
    p = tmp_path / "flags_2019-06-01.tif"
    with RasterWriter(p, g, "uint8", description="0 observed; 1 filled; 255 no data") as w:
        for row0, n in g.row_blocks(128):
            w.write(flags[row0 : row0 + n], row0)
    ds = gdal.Open(str(p))
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Byte
    assert ds.GetRasterBand(1).GetNoDataValue() == 255
    assert ds.GetRasterBand(1).GetBlockSize() == [256, 256]
    assert np.array_equal(ds.ReadAsArray(), flags)


def test_write_is_deterministic(tmp_path):
    g = _grid()
    arr = np.random.default_rng(3).random(g.shape).astype(np.float32)
    a = write_raster(tmp_path / "a.tif", arr, g, date=D(2020, 1, 1))
    b = write_raster(tmp_path / "b.tif", arr, g, date=D(2020, 1, 1))
    assert a.read_bytes() == b.read_bytes()


def test_series_discovery(tmp_path):
    g = _grid()
    for d in (D(2019, 6, 3), D(2019, 6, 1), D(2019, 6, 2)):
        write_day(tmp_path, "lst", d, np.full(g.shape, 300.0, np.float32), g)
    (tmp_path / ".lst_2019-06-04.part123.tif").write_bytes(b"partial")  # a run in progress
    (tmp_path / "notes.txt").write_text("not a raster")
    (tmp_path / "readme_20190605.txt").write_text("wrong suffix")
    s = DailySeries.from_folder(tmp_path)
    assert s.dates == [D(2019, 6, 1), D(2019, 6, 2), D(2019, 6, 3)]
    assert len(s) == 3 and D(2019, 6, 2) in s and s.start == D(2019, 6, 1) and s.end == D(2019, 6, 3)
    assert s.between(D(2019, 6, 2), None).dates == [D(2019, 6, 2), D(2019, 6, 3)]
    with pytest.raises(SeriesError, match="no file between"):
        s.between(D(2020, 1, 1), D(2020, 2, 1))
    assert s.grid() == g
    assert np.allclose(s.read(D(2019, 6, 2)), 300.0)
    with pytest.raises(SeriesError, match="no file for 2019-06-09"):
        s.path(D(2019, 6, 9))
    assert s.nearest(D(2019, 6, 6), max_days=3) == D(2019, 6, 3)
    assert s.nearest(D(2019, 6, 7), max_days=3) is None
    assert s.nearest(D(2019, 5, 30), max_days=3) == D(2019, 6, 1)
    assert s.nearest(D(2019, 5, 30), max_days=3, before_only=True) is None


def test_series_errors(tmp_path):
    with pytest.raises(SeriesError, match="is not a folder"):
        DailySeries.from_folder(tmp_path / "missing")
    with pytest.raises(SeriesError, match="no raster with a date"):
        DailySeries.from_folder(tmp_path)
    g = _grid()
    write_day(tmp_path, "a", D(2019, 6, 1), np.zeros(g.shape, np.float32), g)
    write_raster(tmp_path / "b_20190601.tif", np.zeros(g.shape, np.float32), g)
    with pytest.raises(SeriesError, match="two files for 2019-06-01"):
        DailySeries.from_folder(tmp_path)


def test_layer_source_composites_and_static(tmp_path):
    g = _grid()
    nd = tmp_path / "ndvi"
    write_day(nd, "ndvi", D(2019, 5, 25), np.full(g.shape, 0.3, np.float32), g)
    write_day(nd, "ndvi", D(2019, 6, 10), np.full(g.shape, 0.5, np.float32), g)
    src = LayerSource.open(nd, max_age_days=16)
    assert not src.is_static
    assert src.date_for(D(2019, 6, 9)) == D(2019, 5, 25)  # the composite in effect
    assert src.date_for(D(2019, 6, 10)) == D(2019, 6, 10)
    assert src.date_for(D(2019, 5, 20)) == D(2019, 5, 25)  # before the first: nearest later
    assert src.date_for(D(2019, 6, 25)) == D(2019, 6, 10)  # the last day of that composite
    assert src.date_for(D(2019, 7, 1)) is None
    assert src.date_for(D(2019, 8, 1)) is None and not src.covers(D(2019, 8, 1))
    assert np.allclose(src.read(D(2019, 6, 1)), 0.3)
    daily = LayerSource.open(nd)
    assert daily.date_for(D(2019, 6, 9)) is None
    with pytest.raises(SeriesError, match="no file within"):
        daily.read(D(2019, 6, 9))
    dem = write_raster(tmp_path / "dem.tif", np.full(g.shape, 4500.0, np.float32), g)
    static = LayerSource.open(dem)
    assert static.is_static and static.covers(D(2000, 1, 1))
    assert np.allclose(static.read(D(2019, 6, 1), g), 4500.0)
    with pytest.raises(RasterReadError, match="no such file"):
        LayerSource.open(tmp_path / "nothing.tif")
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    with pytest.raises(RasterReadError, match="broken.tif"):
        LayerSource.open(tmp_path / "broken.tif")


def test_deflate_level_changes_the_file_not_the_pixels(tmp_path, monkeypatch, caplog):
    g = Grid.from_bounds(LAEA, (0, 0, 512_000, 512_000), 1000)
    rng = np.random.default_rng(5)
    a = (0.3 + 0.05 * np.cumsum(rng.normal(size=g.shape), axis=1) / 30).astype(np.float32)
    a[3:9, 100:120] = np.nan
    assert "ZLEVEL=1" in creation_options(np.float32, g)  # the default
    files = {}
    for level in ("1", "9"):
        monkeypatch.setenv("SSM_DEFLATE_LEVEL", level)
        assert f"ZLEVEL={level}" in creation_options(np.float32, g)
        files[level] = write_raster(tmp_path / f"z{level}.tif", a, g)
    ds1, ds9 = gdal.Open(str(files["1"])), gdal.Open(str(files["9"]))
    assert ds1.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") == "DEFLATE"
    assert ds1.GetRasterBand(1).ReadRaster() == ds9.GetRasterBand(1).ReadRaster()
    assert files["9"].stat().st_size < files["1"].stat().st_size  # the level reached GDAL
    ds1 = ds9 = None
    monkeypatch.setenv("SSM_DEFLATE_LEVEL", "fast")
    with caplog.at_level("WARNING"):
        assert "ZLEVEL=1" in creation_options(np.float32, g)
    assert "SSM_DEFLATE_LEVEL" in caplog.text


def test_multithreaded_compression_writes_the_same_pixels(tmp_path, monkeypatch):
    g = Grid.from_bounds(LAEA, (0, 0, 600_000, 520_000), 1000)
    rng = np.random.default_rng(3)
    a = rng.normal(0.3, 0.05, g.shape).astype(np.float32)
    a[10:20, 30:40] = np.nan
    assert "NUM_THREADS=ALL_CPUS" in creation_options(np.float32, g)
    assert not any(o.startswith("NUM_THREADS") for o in creation_options(np.float32, g, threads=1))
    monkeypatch.setenv("SSM_WRITE_THREADS", "1")
    assert not any(o.startswith("NUM_THREADS") for o in creation_options(np.float32, g))
    p1 = write_raster(tmp_path / "one.tif", a, g)
    monkeypatch.setenv("SSM_WRITE_THREADS", "2")
    assert "NUM_THREADS=2" in creation_options(np.float32, g)
    p2 = write_raster(tmp_path / "two.tif", a, g)
    d1, d2 = gdal.Open(str(p1)), gdal.Open(str(p2))
    assert d1.GetRasterBand(1).ReadRaster() == d2.GetRasterBand(1).ReadRaster()
    assert d2.GetRasterBand(1).GetBlockSize() == [256, 256]
    assert d2.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    d1 = d2 = None
