"""The on-disk cache of grid set-up (core/gridcache.py, Membership.build, the engine's grid plan)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from ssm_downscaling.core import gridcache
from ssm_downscaling.core.downscale.plan import build_plan, grid_plan
from ssm_downscaling.core.grid import Grid, ease2_global, to_wkt
from ssm_downscaling.core.gridcache import cache_folder, cached_arrays, grid_signature
from ssm_downscaling.core.membership import Membership

ALBERS = to_wkt("+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +datum=WGS84 +units=m +no_defs")


@pytest.fixture
def grids() -> tuple[Grid, Grid]:
    fine = Grid.from_bounds(ALBERS, (0, 3_000_000, 150_000, 3_120_000), 1000)
    return fine, ease2_global(36).covering(fine, margin=0)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(gridcache.ENV_FOLDER, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(gridcache.ENV_FOLDER, "off")
    assert cache_folder() is None
    monkeypatch.delenv(gridcache.ENV_FOLDER)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_folder() == tmp_path / "ssm_downscaling" / "grids"


def test_signature_changes_with_each_grid_property(grids):
    fine, coarse = grids
    s = grid_signature([fine, coarse])
    assert s == grid_signature([Grid(fine.crs_wkt, fine.transform, fine.width, fine.height), coarse])
    gt = list(fine.transform)
    gt[0] += 1e-3
    others = [
        [Grid(fine.crs_wkt, tuple(gt), fine.width, fine.height), coarse],
        [Grid(fine.crs_wkt, fine.transform, fine.width + 1, fine.height), coarse],
        [Grid(to_wkt(6933), fine.transform, fine.width, fine.height), coarse],
        [coarse, fine],
    ]
    assert len({s, *(grid_signature(o) for o in others), grid_signature([fine, coarse], extra=[1])}) == 6


def test_second_build_loads_from_the_cache(grids, folder, monkeypatch):
    fine, coarse = grids
    m1 = Membership.build(fine, coarse)
    ref = Membership.build(fine, coarse, cache=False)
    assert len(list(folder.glob("membership-*.npz"))) == 1
    monkeypatch.setattr("ssm_downscaling.core.membership._index_raster_on",
                        lambda *a: pytest.fail("the index was computed again"))
    m2 = Membership.build(fine, coarse)
    np.testing.assert_array_equal(m2.index, m1.index)
    np.testing.assert_array_equal(m2.areas, m1.areas)
    np.testing.assert_array_equal(m2.members, ref.members)
    np.testing.assert_array_equal(m2.coverage(), ref.coverage())
    assert ref.coverage().max() > 0.5
    assert (m2.index >= 0).all()

    blocks = [(r, min(50, fine.height - r)) for r in range(0, fine.height, 50)]
    p1 = grid_plan(m1, blocks)
    ref = build_plan(m1, blocks)
    monkeypatch.setattr("ssm_downscaling.core.downscale.plan.node_positions",
                        lambda *a, **k: pytest.fail("node positions were computed again"))
    p2 = grid_plan(m2, blocks)
    for k in ("node_xy", "fr", "fc"):
        np.testing.assert_array_equal(getattr(p1, k), ref[k])
        np.testing.assert_array_equal(getattr(p2, k), ref[k])
    assert p2.fr.dtype == np.float32 and p2.node_xy.shape == (coarse.size, 2)


def test_a_corrupt_or_foreign_cache_file_is_rebuilt(grids, folder, caplog):
    fine, coarse = grids
    calls = []

    def build():
        calls.append(1)
        return {"a": np.arange(5.0)}

    cached_arrays("t", (fine, coarse), build)
    (path,) = folder.glob("t-*.npz")
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with caplog.at_level(logging.WARNING):
        got = cached_arrays("t", (fine, coarse), build)
    assert len(calls) == 2 and "cannot be used" in caplog.text
    np.testing.assert_array_equal(got["a"], np.arange(5.0))
    np.testing.assert_array_equal(cached_arrays("t", (fine, coarse), build)["a"], np.arange(5.0))
    assert len(calls) == 2  # the rebuilt file is good
    np.savez(path, a=np.zeros(5), _signature=np.array("another"))  # a file of other grids under this name
    np.testing.assert_array_equal(cached_arrays("t", (fine, coarse), build)["a"], np.arange(5.0))
    assert len(calls) == 3


def test_unwritable_cache_folder_falls_back_to_computing(grids, tmp_path, monkeypatch):
    fine, coarse = grids
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(gridcache.ENV_FOLDER, str(blocker / "sub"))
    m = Membership.build(fine, coarse)
    ref = Membership.build(fine, coarse, cache=False)
    np.testing.assert_array_equal(m.index, ref.index)
    assert not list(tmp_path.glob("**/*.tmp"))


def _entry(kind, grids, i, nbytes, age):
    """A cache entry of about ``nbytes`` bytes made ``age`` seconds old; its path."""
    fine, coarse = grids
    cached_arrays(kind, (fine, coarse), lambda: {"a": np.zeros(nbytes // 8)}, extra=[i])
    p = next(p for p in Path(cache_folder()).glob(f"{kind}-*.npz")
             if p.name == f"{kind}-{grid_signature([fine, coarse], [i])[:40]}.npz")
    os.utime(p, (1e9 + age, 1e9 + age))
    return p


def test_many_small_entries_are_all_kept(grids, folder, monkeypatch):
    """A size budget, not a count: 20 small entries (far below 2 GB) all stay."""
    monkeypatch.delenv("SSM_GRID_CACHE_MB", raising=False)
    paths = [_entry("p", grids, i, 4000, i) for i in range(20)]
    assert all(p.exists() for p in paths)  # a count cap (the 12 files of old) would drop 8
    assert gridcache.budget_bytes() == 2048 * 2**20


def test_the_budget_evicts_the_least_recently_used_bytes(grids, folder, monkeypatch):
    """Over ``SSM_GRID_CACHE_MB`` the least recently used files go, across kinds, by size;
    a load makes a file recently used; the newest file stays even when alone too big."""
    size = _entry("p", grids, 99, 100_000, 0).stat().st_size  # ~100 kB each
    monkeypatch.setenv(gridcache.ENV_BUDGET, str(3.5 * size / 2**20))  # room for three
    (folder / "notes.npz").write_bytes(b"x" * 10 * size)  # not ours: never counted nor deleted
    old = [_entry("p", grids, i, 100_000, 10 + i) for i in range(3)] + [_entry("q", grids, 3, 100_000, 13)]
    # the oldest two of the five (the first one made and p-0) are gone, newest three kept
    assert [p.exists() for p in old] == [False, True, True, True]
    assert len(list(folder.glob("p-*.npz"))) == 2 and (folder / "notes.npz").exists()
    # using p-1 makes it the most recent: the next entry evicts p-2 instead
    fine, coarse = grids
    cached_arrays("p", (fine, coarse), lambda: pytest.fail("p-1 was rebuilt"), extra=[1])
    two = _entry("q", grids, 4, 200_000, 5e8)  # twice the size: p-1 still fits, q-3 and p-2 do not
    assert two.exists() and old[1].exists() and not old[2].exists() and not old[3].exists()
    assert sorted(p.name for p in folder.glob("*.npz")) == sorted([two.name, old[1].name, "notes.npz"])
    huge = _entry("q", grids, 5, 400_000, 6e8)  # alone over the budget: kept, every other file goes
    assert sorted(p.name for p in folder.glob("*.npz")) == sorted([huge.name, "notes.npz"])


def test_budget_from_the_environment(monkeypatch, caplog):
    monkeypatch.setenv(gridcache.ENV_BUDGET, "300")
    assert gridcache.budget_bytes() == 300 * 2**20
    monkeypatch.setenv(gridcache.ENV_BUDGET, "0")
    assert gridcache.budget_bytes() == 0
    with caplog.at_level(logging.WARNING):
        monkeypatch.setenv(gridcache.ENV_BUDGET, "lots")
        assert gridcache.budget_bytes() == 2048 * 2**20
    assert gridcache.ENV_BUDGET in caplog.text


def test_a_file_deleted_by_another_process_is_rebuilt_quietly(grids, folder, monkeypatch, caplog):
    fine, coarse = grids
    cached_arrays("t", (fine, coarse), lambda: {"a": np.arange(3.0)})
    (path,) = folder.glob("t-*.npz")
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda p: True if p == path else real_exists(p))
    path.unlink()  # between exists() and the read
    with caplog.at_level(logging.WARNING):
        got = cached_arrays("t", (fine, coarse), lambda: {"a": np.arange(4.0)})
    np.testing.assert_array_equal(got["a"], np.arange(4.0))
    assert "cannot be used" not in caplog.text and real_exists(path)


def test_loaded_arrays_are_read_only_views_of_the_file(grids, folder):
    arrays = {"i": np.arange(12, dtype=np.int32).reshape(3, 4), "f": np.asfortranarray(np.random.default_rng(1).normal(size=(5, 3))),
              "b": np.array([True, False]), "s": np.float64(2.5)}
    built = cached_arrays("test", grids, lambda: arrays)
    got = cached_arrays("test", grids, lambda: pytest.fail("built again"))
    assert set(got) == set(arrays)
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype and got[k].shape == np.shape(v) and np.array_equal(got[k], v)
        assert np.array_equal(built[k], v)
        assert not got[k].flags.writeable  # shared with the page cache: nobody writes into it
    with pytest.raises(ValueError):
        got["i"][0, 0] = 7


def test_a_compressed_cache_file_is_rebuilt(grids, folder, caplog):
    cached_arrays("test", grids, lambda: {"a": np.arange(3)})
    (path,) = folder.glob("test-*.npz")
    sig = grid_signature(list(grids))
    np.savez_compressed(path, a=np.arange(3), _signature=np.array(sig))
    with caplog.at_level(logging.WARNING):
        got = cached_arrays("test", grids, lambda: {"a": np.arange(3) + 1})
    assert np.array_equal(got["a"], np.arange(3) + 1) and "computed again" in caplog.text
