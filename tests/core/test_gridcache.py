"""The on-disk cache of grid set-up (core/gridcache.py, Membership.build, the engine's grid plan)."""

from __future__ import annotations

import logging
import os

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


def test_old_files_are_pruned(grids, folder, monkeypatch):
    fine, coarse = grids
    monkeypatch.setattr(gridcache, "MAX_FILES", 3)
    for i in range(5):
        cached_arrays("p", (fine, coarse), lambda: {"a": np.zeros(1)}, extra=[i])
        p = folder / f"p-{grid_signature([fine, coarse], [i])[:40]}.npz"
        os.utime(p, (1e9 + i, 1e9 + i))  # distinct ages
    kept = sorted(folder.glob("p-*.npz"))
    assert len(kept) == 3
    assert {p.name for p in kept} == {f"p-{grid_signature([fine, coarse], [i])[:40]}.npz" for i in (2, 3, 4)}
