"""Folder predictors: each input decoded (and warped) once per day, block reads from the
day cache equal to whole-grid reads, release and bounds of the cache (core/downscale/predictors.py)."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pytest

from ssm_downscaling.core.downscale.predictors import DayCache, FolderPredictors
from ssm_downscaling.core.grid import Grid, to_wkt, warp_to_grid
from ssm_downscaling.core.series import LayerSource, read_raster, write_day, write_raster

from .conftest import LAEA, smooth_field

D0 = dt.date(2019, 6, 1)


def _grid(w: int = 300, h: int = 280) -> Grid:
    return Grid.from_bounds(LAEA, (-150e3, -140e3, -150e3 + w * 1000, -140e3 + h * 1000), 1000)


def _field(grid: Grid, seed: int, base: float, amp: float) -> np.ndarray:
    a = (base + amp * smooth_field(np.random.default_rng(seed), grid.shape, 20)).astype(np.float32)
    a[5:9, 11:17] = np.nan  # some nodata
    return a


@pytest.fixture
def folders(tmp_path):
    """Daily LST (2 days) on the 1 km grid, NDVI on a geographic grid (to be warped), a
    static DEM, and daily flags: ``(grid, layers, flags)``."""
    g = _grid()
    for i in range(2):
        write_day(tmp_path / "lst", "lst", D0 + dt.timedelta(days=i), _field(g, i, 300, 8), g)
        write_day(tmp_path / "flags", "f", D0 + dt.timedelta(days=i),
                  (np.arange(g.size).reshape(g.shape) % (3 + i) == 0).astype(np.uint8), g, dtype="uint8")
    geo = Grid.from_bounds(to_wkt(4326), (87.0, 27.0, 93.5, 33.0), 0.009)
    write_day(tmp_path / "ndvi", "ndvi", D0, _field(geo, 5, 0.5, 0.1), geo)
    write_raster(tmp_path / "dem.tif", _field(g, 9, 3000, 400), g)
    layers = {"lst": LayerSource.open(tmp_path / "lst"), "ndvi": LayerSource.open(tmp_path / "ndvi", max_age_days=16),
              "dem": LayerSource.open(tmp_path / "dem.tif")}
    return g, layers, LayerSource.open(tmp_path / "flags"), tmp_path


def _blocks(n: int, step: int) -> list[tuple[int, int]]:
    return [(r, min(step, n - r)) for r in range(0, n, step)]


@pytest.mark.parametrize("memory_layer_bytes", [1 << 30, 0])  # in memory / scratch files
def test_block_reads_equal_whole_grid_reads_and_decode_once(folders, memory_layer_bytes):
    g, layers, flags, tmp = folders
    src = FolderPredictors(g, layers, flags, scratch_dir=tmp / "scratch")
    src.cache.memory_layer_bytes = memory_layer_bytes
    whole = {k: v.read(D0, g, src._resampling[k]) for k, v in layers.items()}
    assert src._resampling["ndvi"] == "bilinear"
    for _ in range(2):  # two stages reading the same day
        for r0, nr in _blocks(g.height, 37):  # blocks not aligned with anything
            got = src.read(D0, r0, nr)
            for k in layers:
                np.testing.assert_array_equal(got[k], whole[k][r0 : r0 + nr])
            np.testing.assert_array_equal(src.lst_flags(D0, r0, nr), read_raster(flags.path / "f_2019-06-01.tif")[r0 : r0 + nr])
    assert src.cache.loads == 4  # lst, ndvi, dem, flags: each decoded once
    mem, disk = src.cache.nbytes
    assert (mem, disk) == ((4 * g.size * 4, 0) if memory_layer_bytes else (0, 4 * g.size * 4))
    if not memory_layer_bytes:
        assert len(list((tmp / "scratch").rglob("*.f32"))) == 4
    # the next day: new LST and flags, the composite and the static DEM are reused
    src.read(D0 + dt.timedelta(days=1), 0, 10)
    src.lst_flags(D0 + dt.timedelta(days=1), 0, 10)
    assert src.cache.loads == 6
    src.release(D0)  # lst and flags of day 0 go; ndvi is still held by day 1
    assert src.cache.nbytes[0] + src.cache.nbytes[1] == 4 * g.size * 4
    src.release(D0 + dt.timedelta(days=1))  # only the static DEM is left
    assert src.cache.nbytes[0] + src.cache.nbytes[1] == g.size * 4
    src.close()
    assert sum(src.cache.nbytes) == 0
    assert not list((tmp / "scratch").rglob("*.f32"))


def test_reprojected_input_read_in_blocks_equals_the_whole_grid_warp(folders):
    """An input on another CRS is warped once onto the whole target grid: blocks give
    exactly the values of a whole-grid warp (a per-block warp does not, at block edges)."""
    g, layers, _, tmp = folders
    src = FolderPredictors(g, {"ndvi": layers["ndvi"]})
    ref = warp_to_grid(layers["ndvi"].series.path(D0), g, "bilinear")
    blocks = np.vstack([src.read(D0, r0, nr)["ndvi"] for r0, nr in _blocks(g.height, 64)])
    np.testing.assert_array_equal(blocks, ref)
    assert np.isfinite(ref).mean() > 0.9


def test_cache_stays_within_its_budget(folders):
    g, layers, _, tmp = folders
    src = FolderPredictors(g, {"lst": layers["lst"]}, memory_bytes=g.size * 4)  # room for one day
    a = src.read(D0, 0, g.height)["lst"]
    src.read(D0 + dt.timedelta(days=1), 0, 5)
    assert src.cache.nbytes == (g.size * 4, 0) and src.cache.loads == 2
    np.testing.assert_array_equal(src.read(D0, 0, g.height)["lst"], a)  # evicted: read again, same values
    assert src.cache.loads == 3


def test_day_cache_entries_load_once_across_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    g = _grid(40, 30)
    calls = []

    def loader():
        calls.append(1)
        return np.ones(g.shape, dtype=np.float32)

    cache = DayCache(g, tmp_path)
    with ThreadPoolExecutor(4) as ex:
        out = list(ex.map(lambda r: cache.block(("a", "a", "x"), D0, loader, r, 1), range(g.height)))
    assert len(calls) == 1 and all(o.shape == (1, g.width) for o in out)

    def broken():
        raise OSError("unreadable")

    with pytest.raises(OSError):
        cache.block(("b", "b", "x"), D0, broken, 0, 1)
    assert cache.nbytes == (g.size * 4, 0)  # the failed entry is not kept


def test_pickled_sources_get_an_empty_cache(folders):
    g, layers, flags, _ = folders
    src = FolderPredictors(g, layers, flags)
    a = src.read(D0, 3, 7)
    clone = pickle.loads(pickle.dumps(src))
    assert clone.cache is not src.cache and clone.cache.loads == 0
    for k, v in clone.read(D0, 3, 7).items():
        np.testing.assert_array_equal(v, a[k])


def test_unwritable_scratch_folder_keeps_the_day_in_memory(folders, caplog):
    g, layers, _, tmp = folders
    blocker = tmp / "a-file"
    blocker.write_text("not a folder")
    src = FolderPredictors(g, {"lst": layers["lst"]}, scratch_dir=blocker / "scratch")
    src.cache.memory_layer_bytes = 0  # would go to the scratch folder
    a = src.read(D0, 0, g.height)["lst"]
    np.testing.assert_array_equal(a, layers["lst"].read(D0, g))
    assert src.cache.nbytes == (g.size * 4, 0) and "Cannot write the input cache" in caplog.text
