"""Two-layer daily soil water balance (0-5 cm surface layer and 5-50 cm root zone).

One day, per pixel, in this order (water contents in m3/m3, fluxes in mm):

1. interception ``min(P, 1.2 fv)`` is lost (evaporates from leaves);
2. fast runoff on slopes ``Pn * runoff_coef * Pn / (Pn + 15)`` (intense rain, steep land);
3. infiltration fills the surface layer to porosity, the rest the root zone; what does
   not fit runs off (saturation excess);
4. gravity drainage from the surface layer above field capacity into the root zone, and a
   diffusive exchange (capillary rise into a dry surface layer) below it;
5. drainage out of the root zone above field capacity (slower in hollows);
6. soil evaporation ``PET (1 - fv) beta``, ``beta = (theta1 - residual)/(fc - residual)``;
7. transpiration ``PET fv f2``, ``f2 = (theta2 - wp)/(0.7 (fc - wp))``, 10 % from the
   surface layer and 90 % from the root zone.

Returns the day's evapotranspiration (mm). Numba kernel and numpy fallback give the same
numbers (same operations in the same order, float64 inside).
"""

from __future__ import annotations

import numpy as np

from ..accel import kernel, prange
from .jit import jit_pair
from .soil import ROOT_MM, SURFACE_MM

#: diffusive exchange coefficient between the layers (per day) when the surface is below
#: field capacity
EXCHANGE_PER_DAY = 0.08


def _step_py(th1, th2, rain, pet, fv, por, fc, wp, res, k1, k2, roff, water, d1, d2, kx):  # pragma: no cover
    n = th1.size
    et = np.empty(n, dtype=np.float32)
    for i in prange(n):
        p = float(rain[i])
        e0 = float(pet[i])
        if water[i]:
            th1[i] = por[i]
            th2[i] = por[i]
            et[i] = e0
            continue
        t1 = float(th1[i])
        t2 = float(th2[i])
        f = float(fv[i])
        ps = float(por[i])
        c = float(fc[i])
        w = float(wp[i])
        r = float(res[i])
        icpt = min(p, 1.2 * f)
        pn = p - icpt
        fast = pn * float(roff[i]) * pn / (pn + 15.0)
        inf = pn - fast
        a1 = min(inf, (ps - t1) * d1)
        t1 += a1 / d1
        rem = inf - a1
        a2 = min(rem, (ps - t2) * d2)
        t2 += a2 / d2
        if t1 > c:
            q = float(k1[i]) * (t1 - c) * d1
            q = min(q, max((ps - t2) * d2, 0.0))
            t1 -= q / d1
            t2 += q / d2
        else:
            q = kx * (t2 - t1) * d1
            if q > 0.0:
                q = min(q, max((t2 - w) * d2, 0.0))
            t1 += q / d1
            t2 -= q / d2
        if t2 > c:
            t2 -= float(k2[i]) * (t2 - c)
        beta = min(max((t1 - r) / (c - r), 0.0), 1.0)
        es = min(e0 * (1.0 - f) * beta, max((t1 - r) * d1, 0.0))
        t1 -= es / d1
        f2 = min(max((t2 - w) / (0.7 * (c - w)), 0.0), 1.0)
        tr = e0 * f * f2
        tr1 = min(0.1 * tr, max((t1 - w) * d1, 0.0))
        tr2 = min(tr - tr1, max((t2 - w) * d2, 0.0))
        t1 -= tr1 / d1
        t2 -= tr2 / d2
        th1[i] = max(t1, r)
        th2[i] = t2
        et[i] = min(icpt, e0) + es + tr1 + tr2
    return et


def _step_np(th1, th2, rain, pet, fv, por, fc, wp, res, k1, k2, roff, water, d1, d2, kx):
    f64 = np.float64
    p = rain.astype(f64)
    e0 = pet.astype(f64)
    t1 = th1.astype(f64)
    t2 = th2.astype(f64)
    f = fv.astype(f64)
    ps = por.astype(f64)
    c = fc.astype(f64)
    w = wp.astype(f64)
    r = res.astype(f64)
    icpt = np.minimum(p, 1.2 * f)
    pn = p - icpt
    fast = pn * roff.astype(f64) * pn / (pn + 15.0)
    inf = pn - fast
    a1 = np.minimum(inf, (ps - t1) * d1)
    t1 = t1 + a1 / d1
    rem = inf - a1
    a2 = np.minimum(rem, (ps - t2) * d2)
    t2 = t2 + a2 / d2
    above = t1 > c
    q_down = np.minimum(k1.astype(f64) * (t1 - c) * d1, np.maximum((ps - t2) * d2, 0.0))
    q_x = kx * (t2 - t1) * d1
    q_x = np.where(q_x > 0.0, np.minimum(q_x, np.maximum((t2 - w) * d2, 0.0)), q_x)
    t1 = np.where(above, t1 - q_down / d1, t1 + q_x / d1)
    t2 = np.where(above, t2 + q_down / d2, t2 - q_x / d2)
    t2 = np.where(t2 > c, t2 - k2.astype(f64) * (t2 - c), t2)
    beta = np.minimum(np.maximum((t1 - r) / (c - r), 0.0), 1.0)
    es = np.minimum(e0 * (1.0 - f) * beta, np.maximum((t1 - r) * d1, 0.0))
    t1 = t1 - es / d1
    f2 = np.minimum(np.maximum((t2 - w) / (0.7 * (c - w)), 0.0), 1.0)
    tr = e0 * f * f2
    tr1 = np.minimum(0.1 * tr, np.maximum((t1 - w) * d1, 0.0))
    tr2 = np.minimum(tr - tr1, np.maximum((t2 - w) * d2, 0.0))
    t1 = t1 - tr1 / d1
    t2 = t2 - tr2 / d2
    et = np.minimum(icpt, e0) + es + tr1 + tr2
    wat = water.astype(bool)
    th1[:] = np.where(wat, ps, np.maximum(t1, r))
    th2[:] = np.where(wat, ps, t2)
    return np.where(wat, e0, et).astype(np.float32)


_step_pair = jit_pair(_step_py)


def _step_nb(th1, *args):
    return _step_pair(th1.size * 8, th1, *args)


_step = kernel(_step_nb if _step_pair else None, _step_np, "water_balance_step")


def water_balance_step(th1: np.ndarray, th2: np.ndarray, rain: np.ndarray, pet: np.ndarray, fv: np.ndarray,
                       por: np.ndarray, fc: np.ndarray, wp: np.ndarray, res: np.ndarray, drain_surface: np.ndarray,
                       drain_root: np.ndarray, runoff_coef: np.ndarray, water: np.ndarray) -> np.ndarray:
    """Advance the layer water contents ``th1`` (surface) and ``th2`` (root zone) by one
    day, in place (float32 arrays, any equal shapes, contiguous); returns ET (mm/day)."""
    shape = th1.shape
    if not (th1.flags.c_contiguous and th2.flags.c_contiguous):
        raise ValueError("th1 and th2 must be C-contiguous (they are updated in place)")
    flat = [np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
            for a in (rain, pet, fv, por, fc, wp, res, drain_surface, drain_root, runoff_coef)]
    wat = np.ascontiguousarray(water, dtype=np.bool_).reshape(-1)
    et = _step(th1.reshape(-1), th2.reshape(-1), *flat, wat, SURFACE_MM, ROOT_MM, EXCHANGE_PER_DAY)
    return np.asarray(et).reshape(shape)
