"""Metrics of one or more products against the stations, per station and on average."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .matching import SUBSETS, matched_masks, subset_mask
from .metrics import ALL_KEYS, metrics_table, station_average

#: the metrics averaged over stations
AVERAGED = ("R", "p_R", "BIAS", "RMSD", "urmsd")


@dataclass
class Comparison:
    """Per-station metrics of several products on several subsets.

    table[(product, subset)] : dict of metric arrays ``(n_stations,)`` keyed as
        :data:`metrics.ALL_KEYS`; subsets are ``all`` and, with flags, ``clear`` and ``cloudy``.
    masks[product] : bool ``(n_stations, n_days)``, the matched pairs of ``all``.
    """

    products: list[str]
    subsets: list[str]
    table: dict[tuple[str, str], dict[str, np.ndarray]]
    masks: dict[str, np.ndarray]
    min_obs: int
    alpha: float
    common_days: bool

    def metrics(self, product: str, subset: str = "all") -> dict[str, np.ndarray]:
        return self.table[(product, subset)]

    def validated(self, product: str, subset: str = "all") -> np.ndarray:
        """Stations with at least ``min_obs`` matched days (their metrics are set)."""
        return np.asarray(self.table[(product, subset)]["n_obs"]) >= self.min_obs

    def average(self, product: str, subset: str = "all", how: str = "mean") -> dict[str, float]:
        """Station mean or median of the metrics (see :func:`metrics.station_average`)."""
        return station_average(self.table[(product, subset)], how)

    def average_rows(self) -> list[dict]:
        """One row per product, subset and statistic (mean, median)."""
        rows = []
        for p in self.products:
            for s in self.subsets:
                for how in ("mean", "median"):
                    a = self.average(p, s, how)
                    rows.append({"product": p, "subset": s, "statistic": how, **a})
        return rows


def compare_products(
    reference: np.ndarray,
    products: Mapping[str, np.ndarray],
    condition: np.ndarray | None = None,
    min_obs: int = 10,
    alpha: float = 0.05,
    common_days: bool = True,
) -> Comparison:
    """Metrics of each product (``(n, n_days)`` arrays, NaN missing) against ``reference``.

    ``condition`` (int8 ``(n, n_days)``, see :func:`matching.sky_condition`) adds the
    ``clear`` and ``cloudy`` subsets. With ``common_days`` every product is evaluated on
    the days on which all products and the station have a value.
    """
    reference = np.asarray(reference, dtype=np.float64)
    for name, v in products.items():
        if np.shape(v) != reference.shape:
            raise ValueError(f"product {name!r} has shape {np.shape(v)}, the stations {reference.shape}")
    masks = matched_masks(reference, products, common_days)
    subsets = list(SUBSETS) if condition is not None else ["all"]
    table: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for name, v in products.items():
        for s in subsets:
            m = subset_mask(masks[name], condition, s)
            table[(name, s)] = metrics_table(v, reference, m, min_obs=min_obs, alpha=alpha)
    return Comparison(list(products), subsets, table, masks, int(min_obs), float(alpha), bool(common_days))


def long_rows(comparison: Comparison, ids: list[str]) -> list[dict]:
    """One row per station, product and subset with every metric (tidy table)."""
    rows = []
    for p in comparison.products:
        for s in comparison.subsets:
            t = comparison.table[(p, s)]
            for i, sid in enumerate(ids):
                row = {"station_id": sid, "product": p, "subset": s}
                row.update({k: (int(t[k][i]) if k == "n_obs" else float(t[k][i])) for k in ALL_KEYS})
                rows.append(row)
    return rows
