"""What the background "sees": its effective resolution and the elevation lapse rate.

A reanalysis background is smoother than its grid (its effective resolution is a few
cells) and has no 1 km terrain. Both are learned from the clear pixels of a few days by
pooled least squares of ``LST - background`` on ``dz = z - S[z]`` (elevation minus the
elevation the background sees) and ``S[c]`` (the cloud fraction it sees), with one
intercept per day: the blur of the footprint ``S`` that explains the data best is kept
(:func:`learn_background_model`), and the coefficient of ``dz`` is the clear-sky lapse rate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .footprint import Footprint
from .options import GapfillOptions

log = logging.getLogger(__name__)

#: effective-resolution blurs tried (Gaussian sigma in background cells)
SIGMA_CANDIDATES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
#: plausible range of a learned clear-sky LST lapse rate (K/m)
LAPSE_RANGE = (-0.015, 0.005)


class PooledFit:
    """Least squares ``y = a_day + X b`` pooled over days (each day demeaned)."""

    def __init__(self, k: int):
        self.k = k
        self.xtx = np.zeros((k, k))
        self.xty = np.zeros(k)
        self.yty = 0.0
        self.n = 0
        self.days = 0

    def add(self, y: np.ndarray, cols: Sequence[np.ndarray]) -> None:
        ok = np.isfinite(y)
        for c in cols:
            ok &= np.isfinite(c)
        n = int(ok.sum())
        if n < 10:
            return
        yy = y[ok].astype(np.float64)
        yy -= yy.mean()
        self.yty += float(yy @ yy)
        if self.k:
            x = np.column_stack([c[ok].astype(np.float64) for c in cols])
            x -= x.mean(axis=0)
            self.xtx += x.T @ x
            self.xty += x.T @ yy
        self.n += n
        self.days += 1

    def coef(self) -> np.ndarray:
        if self.k == 0:
            return np.zeros(0)
        a = self.xtx + 1e-9 * np.trace(self.xtx) * np.eye(self.k) / max(self.k, 1)
        try:
            return np.linalg.solve(a, self.xty)
        except np.linalg.LinAlgError:
            return np.full(self.k, np.nan)

    def rms(self) -> float:
        """Root mean square residual (K)."""
        if self.n == 0:
            return math.nan
        rss = self.yty - float(self.coef() @ self.xty) if self.k else self.yty
        return math.sqrt(max(rss, 0.0) / self.n)


@dataclass
class BackgroundModel:
    """The learned relation between the background and the 1 km LST.

    ``sigma_cells``: effective-resolution blur of the background footprint (cells);
    ``lapse_rate``: clear-sky LST lapse rate relative to the background (K/m, NaN without DEM);
    ``cloudy_lapse_rate``: the one applied under cloud (K/m); ``rms_by_sigma``: fit quality.
    """

    sigma_cells: float = 0.0
    lapse_rate: float = math.nan
    cloudy_lapse_rate: float = math.nan
    pixels: int = 0
    days: int = 0
    rms_by_sigma: dict[float, float] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [f"background effective blur {self.sigma_cells:g} cell(s)"]
        if math.isfinite(self.lapse_rate):
            parts.append(f"clear-sky lapse rate {self.lapse_rate * 1000:.2f} K/km")
        if math.isfinite(self.cloudy_lapse_rate):
            parts.append(f"cloudy-sky lapse rate {self.cloudy_lapse_rate * 1000:.2f} K/km")
        return ", ".join(parts)


def cloud_fraction(lst: np.ndarray, land: np.ndarray | None, footprint: Footprint) -> np.ndarray:
    """``S[c]``: the share of cloudy land inside the background footprint (float32, 0 where undefined)."""
    s = footprint.to_fine(cloud_fraction_cells(lst, land, footprint))
    return np.where(np.isfinite(s), s, 0.0).astype(np.float32)


def cloud_fraction_cells(lst: np.ndarray, land: np.ndarray | None, footprint: Footprint) -> np.ndarray:
    """``S[c]`` on the background cells (``footprint.to_fine`` brings it to 1 km; NaN there
    means 0): small enough to keep for every day of a window."""
    cloudy = (~np.isfinite(lst)).astype(np.float32)  # 1 cloudy, 0 observed
    if land is not None:
        cloudy[~land & (cloudy == 1)] = np.nan  # neither land nor observed: undefined
    return footprint.cell_means(cloudy)


def learn_background_model(
    samples: Sequence[tuple[np.ndarray, np.ndarray | None]],
    footprint: Footprint | None,
    dem: np.ndarray | None,
    land: np.ndarray | None,
    options: GapfillOptions,
) -> BackgroundModel:
    """Choose the footprint blur and learn the lapse rate from ``samples`` of (lst, background at 1 km)."""
    samples = [(a, b) for a, b in samples if b is not None]
    fixed_sigma = options.background_smoothing
    model = BackgroundModel(sigma_cells=float(fixed_sigma or 0.0))
    if footprint is None or not samples:
        _set_lapse(model, math.nan, options, dem is not None)
        return model
    candidates = (float(fixed_sigma),) if fixed_sigma is not None else SIGMA_CANDIDATES
    best: tuple[float, float, PooledFit] | None = None
    for sigma in candidates:
        fp = footprint.with_sigma(sigma)
        dz = None if dem is None else (dem - fp.smooth(dem)).astype(np.float32)
        fit = PooledFit(1 + (dz is not None))
        for lst, bg in samples:
            cols = [cloud_fraction(lst, land, fp)]
            if dz is not None:
                cols.append(dz)
            fit.add(lst.astype(np.float64) - bg, cols)
        rms = fit.rms()
        model.rms_by_sigma[sigma] = rms
        if math.isfinite(rms) and (best is None or rms < best[1] - 1e-6):
            best = (sigma, rms, fit)
    if best is None:
        _set_lapse(model, math.nan, options, dem is not None)
        return model
    sigma, _, fit = best
    model.sigma_cells = sigma
    model.pixels, model.days = fit.n, fit.days
    learned = math.nan
    if dem is not None:
        dz = dem - footprint.with_sigma(sigma).smooth(dem)
        relief = float(np.nanstd(dz)) if np.isfinite(dz).any() else 0.0
        if fit.n >= 100 and relief >= 20.0:
            learned = float(fit.coef()[1])
        else:
            log.info("Lapse rate: too little relief or data to learn it (sd of dz %.0f m, %d pixels)", relief, fit.n)
    _set_lapse(model, learned, options, dem is not None)
    log.info("Background model from %d clear pixels on %d day(s): %s", model.pixels, model.days, model.describe())
    return model


def _set_lapse(model: BackgroundModel, learned: float, options: GapfillOptions, have_dem: bool) -> None:
    if not have_dem:
        model.lapse_rate = model.cloudy_lapse_rate = math.nan
        return
    if options.lapse_rate is not None:
        g = float(options.lapse_rate)
    elif math.isfinite(learned):
        g = learned
        lo, hi = LAPSE_RANGE
        if not (lo <= g <= hi):
            log.warning("Learned lapse rate %.2f K/km is implausible; clipped to [%g, %g] K/km", g * 1000, lo * 1000, hi * 1000)
            g = min(max(g, lo), hi)
    else:
        g = float(options.default_lapse_rate)
    model.lapse_rate = g
    model.cloudy_lapse_rate = g if options.cloudy_lapse_rate is None else float(options.cloudy_lapse_rate)
