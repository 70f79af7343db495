"""Spatial smoothing on block-decimated grids: normalized Gaussian convolution and
locally weighted linear regression, both O(pixels) for any bandwidth.

A field is summed over ``f x f`` blocks, filtered with a Gaussian on the block grid
(scipy.ndimage, separable) and interpolated back bilinearly to pixel centres, so a
100 km bandwidth on a China-sized 1 km grid costs about as much as a 5 km one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .kernels import bilinear_separable, block_count_sum, block_moments

#: Gaussian kernels are cut at this many sigmas
TRUNCATE = 3.0


@dataclass(frozen=True)
class BlockGrid:
    """``f x f`` pixel blocks covering an ``(height, width)`` array (the last ones may be partial)."""

    shape: tuple[int, int]
    factor: int

    @property
    def block_shape(self) -> tuple[int, int]:
        f = self.factor
        return (-(-self.shape[0] // f), -(-self.shape[1] // f))

    @classmethod
    def for_sigma(cls, shape: tuple[int, int], sigma_px: float, per_sigma: float = 3.0) -> BlockGrid:
        """Blocks of about ``sigma_px / per_sigma`` pixels (at least 1)."""
        return cls((int(shape[0]), int(shape[1])), max(1, int(sigma_px / per_sigma)))

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Block sums (float64, ``block_shape``) of ``values`` (NaN must be zeroed by the caller)."""
        f = self.factor
        if f == 1:
            return values.astype(np.float64, copy=True)
        bh, bw = self.block_shape
        h, w = self.shape
        pad = np.zeros((bh * f, bw * f), dtype=np.float64)
        pad[:h, :w] = values
        return pad.reshape(bh, f, bw, f).sum(axis=(1, 3))

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(i0, fv, j0, fu)``: each pixel row's upper block row and fraction (float32), each
        pixel column's left block column and fraction: the weights of :meth:`upsample`."""
        (i0, _, fv), (j0, _, fu) = (_axis_weights(n, self.factor, nb) for n, nb in zip(self.shape, self.block_shape))
        return i0, fv.astype(np.float32), j0, fu.astype(np.float32)

    @staticmethod
    def padded(blocks: np.ndarray) -> np.ndarray:
        """The block field edge-padded by one row and column (float64), as :meth:`upsample` uses it."""
        return np.pad(np.asarray(blocks, dtype=np.float64), ((0, 1), (0, 1)), mode="edge")

    def upsample(self, blocks: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of block-centre values to pixel centres (float32, ``shape``).

        NaN blocks are skipped (weights renormalised); constant beyond the outer centres.
        """
        f = self.factor
        if f == 1:
            return blocks.astype(np.float32, copy=True)
        i0, fv, j0, fu = self.axes()
        return bilinear_separable(self.padded(blocks), i0, fv, j0, fu)


def _axis_weights(n: int, f: int, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower/upper block index and fraction for pixel centres along one axis."""
    u = (np.arange(n) + 0.5) / f - 0.5
    u = np.clip(u, 0.0, nb - 1.0)
    i0 = np.floor(u).astype(np.int64)
    i1 = np.minimum(i0 + 1, nb - 1)
    return i0, i1, u - i0


def _gauss(blocks: np.ndarray, sigma_blocks: float) -> np.ndarray:
    if sigma_blocks <= 0:
        return blocks
    return ndimage.gaussian_filter(blocks, sigma_blocks, mode="constant", cval=0.0, truncate=TRUNCATE)


def gaussian_fill(values: np.ndarray, sigma_px: float, shrink: float = 0.0) -> np.ndarray:
    """Normalised Gaussian convolution of the finite ``values`` (H, W), float32.

    ``G*(m v) / (G*m + shrink)`` with ``m`` the mask of finite values and ``G`` a Gaussian
    of ``sigma_px`` (normalised to 1): a local weighted mean that, with ``shrink > 0``,
    decays towards 0 where few finite values are near (``G*m`` is their local fraction).
    NaN where ``G*m`` is 0.
    """
    bg = BlockGrid.for_sigma(values.shape, sigma_px)
    sums = block_count_sum(np.ascontiguousarray(values), bg.factor)  # one pass, no full-size temporaries
    return bg.upsample(gaussian_fill_blocks(sums, bg, sigma_px, shrink))


def gaussian_fill_blocks(sums: np.ndarray, grid: BlockGrid, sigma_px: float, shrink: float = 0.0) -> np.ndarray:
    """:func:`gaussian_fill` on the block grid, from the block counts and sums ``(2, *block_shape)``
    of the finite values (:data:`~.kernels.block_count_sum`); ``grid.upsample`` brings it to the pixels."""
    f = grid.factor
    sig_b = math.sqrt(max(sigma_px**2 - (f * f - 1) / 12.0, 0.0)) / f  # account for the block box
    cnt = _gauss(sums[0], sig_b) / (f * f)
    tot = _gauss(sums[1], sig_b) / (f * f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 1e-9, tot / (cnt + shrink), np.nan)


@dataclass
class LocalFit:
    """A locally weighted fit ``y = intercept + slope * x`` on a block grid."""

    grid: BlockGrid
    intercept: np.ndarray  # float64, grid.block_shape (NaN without support)
    slope: np.ndarray  # float64, grid.block_shape
    support: np.ndarray  # float64, effective number of pixels near each block

    def intercept_fine(self) -> np.ndarray:
        return self.grid.upsample(self.intercept)

    def slope_fine(self) -> np.ndarray:
        return self.grid.upsample(self.slope)


def regression_moments(
    y: np.ndarray, x: np.ndarray | None, sigma_px: float, grid: BlockGrid | None = None
) -> np.ndarray:
    """Gaussian-weighted moments ``(n, sum x, sum y, sum x^2, sum x y)`` of the finite pairs
    around each block (float64, ``(5, *grid.block_shape)``).

    ``n`` is an effective pixel count (kernel weight 1 at the centre). Moments of several
    days add up (pooling); :func:`solve_moments` turns them into a fit. ``x = None`` is
    treated as 0 (a local mean).
    """
    grid = grid or BlockGrid.for_sigma(y.shape, sigma_px)
    xx = x if x is not None else np.zeros(y.shape, dtype=np.float32)
    sums = block_moments(np.ascontiguousarray(y, dtype=np.float32), np.ascontiguousarray(xx, dtype=np.float32), grid.factor)
    return moments_from_sums(sums, sigma_px, grid)


def moments_from_sums(sums: np.ndarray, sigma_px: float, grid: BlockGrid) -> np.ndarray:
    """:func:`regression_moments` from the plain block sums ``(n, sum x, sum y, sum x^2, sum x y)``
    (:data:`~.kernels.block_moments`): each Gaussian-filtered on the block grid."""
    f = grid.factor
    sig_b = math.sqrt(max(sigma_px**2 - (f * f - 1) / 12.0, 0.0)) / f
    area = 2.0 * math.pi * max(sig_b, 0.5) ** 2  # kernel peak -> 1
    return np.stack([_gauss(s, sig_b) * area for s in sums])


def solve_moments(
    moments: np.ndarray,
    grid: BlockGrid,
    slope_prior: float | np.ndarray = 0.0,
    prior_pixels: float = 100.0,
    x_scale: float = 0.1,
    fit_slope: bool = True,
) -> LocalFit:
    """The local fit from (pooled) :func:`regression_moments`.

    ``slope = (n cov + k s0) / (n var + k)`` shrinks towards ``slope_prior`` (``s0``)
    with ``k = prior_pixels * x_scale**2`` (the prior counts like ``prior_pixels`` pixels
    whose ``x`` spread is ``x_scale``): it decides where ``x`` hardly varies.
    """
    n, sx, sy, sxx, sxy = moments
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = sx / n
        my = sy / n
        if fit_slope:
            var = np.maximum(sxx / n - mx * mx, 0.0)
            cov = sxy / n - mx * my
            k = prior_pixels * x_scale * x_scale
            slope = (n * cov + k * slope_prior) / (n * var + k)
        else:
            slope = np.zeros_like(my)
        intercept = my - slope * mx
    bad = ~(n > 1e-6)
    intercept = np.where(bad, np.nan, intercept)
    slope = np.where(bad, np.nan, slope)
    return LocalFit(grid, intercept, slope, np.where(bad, 0.0, n))


def local_linear_fit(
    y: np.ndarray,
    x: np.ndarray | None,
    sigma_px: float,
    slope_prior: float | np.ndarray = 0.0,
    prior_pixels: float = 100.0,
    x_scale: float = 0.1,
    grid: BlockGrid | None = None,
) -> LocalFit:
    """Gaussian-weighted local least squares of ``y`` on ``x`` (both (H, W); NaN y = unused).

    At each block: weighted means/variances of the finite pairs within the Gaussian
    bandwidth ``sigma_px``, then :func:`solve_moments`. ``x = None`` fits a local mean.
    """
    grid = grid or BlockGrid.for_sigma(y.shape, sigma_px)
    mom = regression_moments(y, x, sigma_px, grid)
    return solve_moments(mom, grid, slope_prior, prior_pixels, x_scale, fit_slope=x is not None)


def global_slope(moments: np.ndarray, min_var: float = 1e-4) -> float:
    """The slope of all pooled moments together (NaN when ``x`` hardly varies)."""
    n, sx, sy, sxx, sxy = (float(v.sum()) for v in moments)
    if n <= 3:
        return math.nan
    mx, my = sx / n, sy / n
    var = sxx / n - mx * mx
    if var < min_var:
        return math.nan
    return (sxy / n - mx * my) / var


def global_linear_fit(y: np.ndarray, x: np.ndarray, min_var: float = 1e-4) -> tuple[float, float, int, float]:
    """Ordinary least squares ``y = a + b x`` over finite pairs: ``(a, b, n, var_x)``.

    ``b`` is NaN when ``var_x < min_var`` or fewer than 3 pairs (the slope is not determined).
    """
    m = np.isfinite(y) & np.isfinite(x)
    n = int(m.sum())
    if n < 3:
        return (float(np.mean(y[m])) if n else math.nan, math.nan, n, 0.0)
    yy = y[m].astype(np.float64)
    xx = x[m].astype(np.float64)
    mx, my = xx.mean(), yy.mean()
    var = float(((xx - mx) ** 2).mean())
    if var < min_var:
        return (float(my), math.nan, n, var)
    b = float(((xx - mx) * (yy - my)).mean() / var)
    return (float(my - b * mx), b, n, var)
