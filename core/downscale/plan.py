"""The grid plan of a downscaling run: what the engine needs that depends only on the grids.

:func:`grid_plan` gives the coarse cell centres in metres (``node_xy``) and every 1 km
pixel's fractional node coordinates (``fr``, ``fc``, see :mod:`.interp`), computed once
per pair of grids (and row-block layout, which the node positions' lattice follows) and
kept in the on-disk grid cache (:mod:`..gridcache`), so later runs on the same grids
load them instead of transforming every pixel again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..gridcache import cached_arrays
from ..membership import Membership
from .interp import node_positions, node_xy_metres


@dataclass(frozen=True)
class GridPlan:
    """``node_xy`` float64 ``(n_cells, 2)`` coarse cell centres in metres (centres that
    cannot be transformed are set to the mean of the others); ``fr``, ``fc`` float32
    ``fine.shape`` fractional node row and column of each fine pixel centre (NaN where
    untransformable)."""

    node_xy: np.ndarray
    fr: np.ndarray
    fc: np.ndarray


def build_plan(membership: Membership, blocks: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
    """The plan's arrays, computed (``blocks``: the ``(row0, nrows)`` strips whose
    node positions are computed together, as the engine has always done)."""
    node_xy = node_xy_metres(membership)
    if not np.isfinite(node_xy).all():  # cells whose centre cannot be transformed
        ok = np.isfinite(node_xy).all(axis=1)
        node_xy[~ok] = node_xy[ok].mean(axis=0)
    fine, coarse = membership.fine, membership.coarse
    fr = np.empty(fine.shape, dtype=np.float32)
    fc = np.empty(fine.shape, dtype=np.float32)
    for r0, nr in blocks:
        a, b = node_positions(fine, coarse, r0, nr)
        fr[r0 : r0 + nr] = a
        fc[r0 : r0 + nr] = b
    return {"node_xy": node_xy, "fr": fr, "fc": fc}


def grid_plan(membership: Membership, blocks: Sequence[tuple[int, int]], cache: bool = True) -> GridPlan:
    """The grid plan of ``membership``'s grids, from the grid cache when it has it."""
    blocks = [(int(r0), int(nr)) for r0, nr in blocks]

    def make() -> dict[str, np.ndarray]:
        return build_plan(membership, blocks)

    got = cached_arrays("plan", (membership.fine, membership.coarse), make, extra=blocks) if cache else make()
    return GridPlan(got["node_xy"], got["fr"], got["fc"])
