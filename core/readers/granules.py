"""Which files do I need? The granules (file-name patterns) each product needs for an
extent and a date range, computed offline, as lines a download tool can take.

MODIS: the sinusoidal tiles ``hHHvVV`` intersecting the extent (:mod:`.modis_tiles`) x the
product's dates (daily; 16-day MOD13A2 composites start on day-of-year 1, 17, 33, ...,
MYD13A2 on 9, 25, ...; 8-day MOD09A1 on 1, 9, 17, ...), as
``MOD11A1.AYYYYDDD.hHHvVV.061.*.hdf``. Global daily products (LPRM, JAXA, SMAP, ESA
CCI, GLDAS) need one file per day (per pass or step) whatever the extent; ERA5 is
requested from the CDS by area and date, so its line is the request.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..errors import SsmError
from ..grid import to_wkt, transform_points
from ..series import daterange
from .modis_tiles import tiles_for_extent

#: AMSR-E stopped on 2011-10-04; AMSR2 data start on 2012-07-02
AMSRE_END = dt.date(2011, 10, 3)
AMSR2_START = dt.date(2012, 7, 2)

MODIS_PRODUCTS = {
    # short name: (period days, first day-of-year of the composite calendar)
    "MOD11A1": (1, 1), "MYD11A1": (1, 1), "MOD09GA": (1, 1), "MYD09GA": (1, 1), "MCD43A3": (1, 1),
    "MOD13A2": (16, 1), "MYD13A2": (16, 9), "MOD09A1": (8, 1), "MYD09A1": (8, 1),
}
GLOBAL_PRODUCTS = ("LPRM", "JAXA", "SMAP", "SMAP_E", "ESA_CCI", "GLDAS", "ERA5", "ERA5_LAND")


def modis_dates(short_name: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """The file dates of a MODIS product between ``start`` and ``end``; for composites also
    the one that covers ``start``."""
    period, first = MODIS_PRODUCTS[short_name]
    if period == 1:
        return daterange(start, end)
    out = []
    for year in range(start.year, end.year + 1):
        doy = first
        while doy <= (366 if year % 4 == 0 else 365):
            d = dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
            if d <= end and d + dt.timedelta(days=period - 1) >= start:
                out.append(d)
            doy += period
    return out


def granules(
    product: str,
    bounds: tuple[float, float, float, float],
    start: dt.date,
    end: dt.date,
    crs: str | int = 4326,
    collection: str = "061",
    passes: str = "AD",
) -> list[str]:
    """File-name patterns (``*`` for the production time stamp) of ``product`` for the
    extent ``bounds = (xmin, ymin, xmax, ymax)`` in ``crs`` and the days ``start..end``.

    ``product``: a MODIS short name (:data:`MODIS_PRODUCTS`) or one of
    :data:`GLOBAL_PRODUCTS`. ``passes``: ``A`` and/or ``D`` for LPRM and JAXA.
    """
    if end < start:
        raise SsmError(f"the end date {end} is before the start date {start}")
    p = product.upper()
    days = daterange(start, end)
    if p in MODIS_PRODUCTS:
        tiles = tiles_for_extent(bounds, crs)
        if not tiles:
            raise SsmError(f"the extent {bounds} does not meet any MODIS tile")
        return [f"{p}.A{d.year}{d.timetuple().tm_yday:03d}.h{h:02d}v{v:02d}.{collection}.*.hdf"
                for d in modis_dates(p, start, end) for h, v in tiles]
    out: list[str] = []
    if p == "LPRM":
        for d in days:
            for ps in passes:
                if d <= AMSRE_END:
                    out.append(f"LPRM-AMSR_E_L3_{ps}_SOILM3_V002_{d:%Y%m%d}*.nc")
                elif d >= AMSR2_START:
                    out.append(f"LPRM-AMSR2_L3_{ps}_SOILM3_V001_{d:%Y%m%d}*.nc4")
        return out
    if p == "JAXA":
        for d in days:
            sat = "GW1AM2" if d >= AMSR2_START else "GWAE" if d <= AMSRE_END else None
            if sat:
                out += [f"{sat}_{d:%Y%m%d}_01D_EQM{ps}_L3SGSMC*.h5" for ps in passes]
        return out
    if p in ("SMAP", "SMAP_E"):
        tag = "SMAP_L3_SM_P_E" if p == "SMAP_E" else "SMAP_L3_SM_P"
        return [f"{tag}_{d:%Y%m%d}_R*.h5" for d in days]
    if p == "ESA_CCI":
        return [f"ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-{d:%Y%m%d}000000-fv*.nc" for d in days]
    if p == "GLDAS":
        return [f"GLDAS_NOAH025_3H.A{d:%Y%m%d}.{h:02d}00.021.nc4" for d in days for h in range(0, 24, 3)]
    if p in ("ERA5", "ERA5_LAND"):
        lon, lat = _lonlat_bounds(bounds, crs)
        name = "reanalysis-era5-single-levels" if p == "ERA5" else "reanalysis-era5-land"
        months = sorted({(d.year, d.month) for d in days})
        return [f"{name}: variable=skin_temperature,2m_temperature year={y} month={m:02d} "
                f"day={','.join(f'{d.day:02d}' for d in days if (d.year, d.month) == (y, m))} time=00:00..23:00 "
                f"area={lat[1]:.2f},{lon[0]:.2f},{lat[0]:.2f},{lon[1]:.2f} format=netcdf"
                for y, m in months]
    raise SsmError(f"unknown product {product!r}; choose a MODIS short name ({', '.join(MODIS_PRODUCTS)}) "
                   f"or one of {', '.join(GLOBAL_PRODUCTS)}")


def _lonlat_bounds(bounds, crs) -> tuple[tuple[float, float], tuple[float, float]]:
    import numpy as np

    xmin, ymin, xmax, ymax = map(float, bounds)
    t = np.linspace(0, 1, 33)
    xs = np.concatenate([xmin + t * (xmax - xmin), np.full_like(t, xmax), xmin + t * (xmax - xmin), np.full_like(t, xmin)])
    ys = np.concatenate([np.full_like(t, ymin), ymin + t * (ymax - ymin), np.full_like(t, ymax), ymin + t * (ymax - ymin)])
    lon, lat = transform_points(xs, ys, to_wkt(crs), to_wkt(4326))
    return (float(np.nanmin(lon)), float(np.nanmax(lon))), (float(np.nanmin(lat)), float(np.nanmax(lat)))


def write_granule_list(
    path: str | Path,
    products: list[str],
    bounds: tuple[float, float, float, float],
    start: dt.date,
    end: dt.date,
    crs: str | int = 4326,
) -> Path:
    """A text file: ``# product`` headers, then one pattern (or request) per line."""
    lines = [f"# granules for extent {tuple(round(b, 4) for b in bounds)} ({crs if isinstance(crs, int) else 'given CRS'}), "
             f"{start} to {end}"]
    for prod in products:
        g = granules(prod, bounds, start, end, crs)
        lines.append(f"# {prod}: {len(g)} file(s)")
        lines += g
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.part")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(p)
    return p
