"""The downscaling methods by name."""

from __future__ import annotations

from collections.abc import Sequence

from ..argcheck import names
from .base import Downscaler
from .bilinear import BilinearDownscaler
from .dispatch import DispatchDownscaler
from .forest import ForestDownscaler
from .gwr import GWRDownscaler
from .nearest import NearestDownscaler

#: method name -> estimator class; the first is the default
METHODS: dict[str, type[Downscaler]] = {
    "gwr": GWRDownscaler,
    "forest": ForestDownscaler,
    "dispatch": DispatchDownscaler,
    "bilinear": BilinearDownscaler,
    "nearest": NearestDownscaler,
}


def make_downscaler(method: str = "gwr", predictors: Sequence[str] = ("lst", "ndvi", "albedo"), **options) -> Downscaler:
    """An unfitted estimator of ``method`` using the raw ``predictors`` that are available;
    ``options`` that the method does not take are ignored (so one set of options serves
    every method)."""
    predictors = names(predictors, "predictors")
    try:
        cls = METHODS[method]
    except KeyError:
        raise ValueError(f"Unknown downscaling method {method!r}; choose from {', '.join(METHODS)}") from None
    est = cls()
    params = est.get_params()
    known = {k: v for k, v in options.items() if k in params and v is not None}
    if "predictors" in params:
        wanted = params["predictors"] if cls is DispatchDownscaler else predictors
        known["predictors"] = tuple(p for p in wanted if p in predictors) if cls is DispatchDownscaler else tuple(predictors)
    return est.set_params(**known)
