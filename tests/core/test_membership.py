"""Fine-to-coarse membership, aggregation and expansion across CRSs (core/membership.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ssm_downscaling.core.errors import GridError
from ssm_downscaling.core.grid import Grid, ease2_global
from ssm_downscaling.core.membership import Aggregator, Membership, membership_by_points

ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +datum=WGS84 +units=m +no_defs"


def ease2_36km() -> Grid:
    return ease2_global(36)


@pytest.fixture(scope="module")
def albers_1km() -> Grid:
    # a 120 x 100 km Albers grid near 30N 90E (Tibet), as a 1 km target grid would be
    x0, y0 = -1_400_000.0, 3_500_000.0
    return Grid.from_bounds(ALBERS, (x0, y0, x0 + 120_000, y0 + 100_000), 1000)


@pytest.mark.parametrize("coarse_kind", ["ease2", "geographic"])
def test_membership_matches_explicit_point_transform(albers_1km, coarse_kind):
    if coarse_kind == "ease2":
        coarse = ease2_36km().covering(albers_1km)
    else:
        coarse = Grid.from_bounds(4326, (60, 10, 120, 50), 0.25).covering(albers_1km)
    m = Membership.build(albers_1km, coarse)
    ref = membership_by_points(albers_1km, coarse)
    assert np.array_equal(m.index, ref)
    assert (m.index >= 0).all()  # the cropped coarse grid covers the whole fine grid
    # members add up to the number of fine pixels, 36 km cells hold at most ~36^2 of them
    assert m.members.sum() == albers_1km.size
    if coarse_kind == "ease2":
        assert m.members.max() <= 37 * 37


def test_membership_warp_in_threads_equals_one_thread_and_the_point_transform(monkeypatch):
    # large enough (600 x 500 px) for GDAL's warper to split the work between threads
    x0, y0 = -1_600_000.0, 3_300_000.0
    fine = Grid.from_bounds(ALBERS, (x0, y0, x0 + 600_000, y0 + 500_000), 1000)
    coarse = ease2_36km().covering(fine)
    got = {}
    for threads in ("1", "ALL_CPUS", "2"):
        monkeypatch.setenv("SSM_READ_THREADS", threads)
        got[threads] = Membership.build(fine, coarse, cache=False).index
    assert np.array_equal(got["ALL_CPUS"], got["1"]) and np.array_equal(got["2"], got["1"])
    assert np.array_equal(got["1"], membership_by_points(fine, coarse))


def test_aggregate_constant_linear_and_nan(albers_1km):
    coarse = ease2_36km().covering(albers_1km)
    m = Membership.build(albers_1km, coarse)
    const = np.full(albers_1km.shape, 0.25, np.float32)
    mean, count = m.aggregate(const)
    has = m.members > 0
    assert np.allclose(mean[has], 0.25) and np.isnan(mean[~has]).all()
    assert np.array_equal(count, m.members)
    # mean of a field equal to the coarse cell index is that index
    cell_field = m.index.astype(np.float32)
    mean, _ = m.aggregate(cell_field)
    assert np.array_equal(mean[has], np.flatnonzero(has.ravel()).astype(np.float32).reshape(-1))
    # NaN members are ignored and counted out
    vals = np.random.default_rng(0).random(albers_1km.shape).astype(np.float32)
    vals[::2, :] = np.nan
    mean, count = m.aggregate(vals)
    for cell in np.flatnonzero(has.ravel())[:5]:
        sel = (m.index == cell) & np.isfinite(vals)
        assert count.ravel()[cell] == sel.sum()
        assert mean.ravel()[cell] == pytest.approx(vals[sel].mean(), rel=1e-6)
    mean2, _ = m.aggregate(vals, min_count=10_000)
    assert np.isnan(mean2).all()


def test_expand_then_aggregate_is_identity(albers_1km):
    coarse = ease2_36km().covering(albers_1km)
    m = Membership.build(albers_1km, coarse)
    cv = np.random.default_rng(1).random(coarse.shape).astype(np.float32)
    fine = m.expand(cv)
    assert fine.shape == albers_1km.shape
    back, _ = m.aggregate(fine)
    has = m.members > 0
    assert np.allclose(back[has], cv[has], rtol=1e-6)


def test_area_weighted_mean_on_a_geographic_fine_grid():
    # fine 0.01 deg geographic grid, coarse 1 deg: pixel areas shrink with cos(lat)
    fine = Grid.from_bounds(4326, (10, 59, 11, 61), 0.01)
    coarse = Grid.from_bounds(4326, (10, 59, 11, 61), 1.0)
    m = Membership.build(fine, coarse)
    assert m.weights is not None
    lat = np.broadcast_to(fine.centres()[1], fine.shape)
    mean, _ = m.aggregate(lat.astype(np.float32))
    # the area-weighted mean latitude lies a little south of the cell centre
    assert mean[0, 0] < 60.5 and mean[0, 0] == pytest.approx(60.5 - 0.0025, abs=0.002)
    unweighted = lat[:100].mean()
    assert mean[0, 0] < unweighted


def test_aggregator_block_wise_equals_whole(albers_1km):
    coarse = ease2_36km().covering(albers_1km)
    m = Membership.build(albers_1km, coarse)
    vals = np.random.default_rng(2).normal(size=albers_1km.shape).astype(np.float32)
    whole, wc = m.aggregate(vals)
    agg = Aggregator(m)
    for row0, n in albers_1km.row_blocks(17):
        agg.add(vals[row0 : row0 + n], row0)
    blocks, bc = agg.result()
    assert np.array_equal(wc, bc)
    assert np.allclose(whole, blocks, equal_nan=True, rtol=1e-6)


def test_coverage_of_cells(albers_1km):
    coarse = ease2_36km().covering(albers_1km)
    m = Membership.build(albers_1km, coarse)
    cov = m.coverage()
    assert cov.max() == pytest.approx(1.0, abs=0.06)  # full interior cells
    assert (cov[m.members == 0] == 0).all()
    assert cov.min() < 0.9  # edge cells are partial


def test_no_overlap_is_a_clear_error(albers_1km):
    far = Grid.from_bounds(4326, (-80, -40, -70, -30), 0.25)
    with pytest.raises(GridError, match="do not overlap"):
        Membership.build(albers_1km, far)
