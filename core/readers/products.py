"""The products the importer knows, their options and how one file is read.

:class:`ImportOptions` holds every choice of every product (one frozen object, validated
once, like ``LstOptions``); :func:`read_file` reads one file of ``options.product`` into a
:class:`~.base.ProductDay` on its native grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .base import ProductDay, ProductError

#: product key -> (label, output prefix, default resampling when going finer, kind)
PRODUCTS = {
    "lprm": ("AMSR-E/AMSR2 LPRM L3 soil moisture (netCDF)", "ssm", "nearest", "coarse"),
    "jaxa": ("JAXA AMSR-E/AMSR2 L3 SMC soil moisture (HDF5)", "ssm", "nearest", "coarse"),
    "smap": ("SMAP L3 SPL3SMP / SPL3SMP_E soil moisture (HDF5)", "ssm", "nearest", "coarse"),
    "esa_cci": ("ESA CCI / C3S soil moisture (netCDF)", "ssm", "nearest", "coarse"),
    "generic": ("Any dated GDAL raster (soil moisture or other)", "value", "nearest", "coarse"),
    "mod11_lst": ("MODIS MOD11A1/MYD11A1 LST (HDF)", "lst", "nearest", "modis"),
    "mod11_lst_diff": ("MODIS MOD11A1/MYD11A1 day minus night LST (HDF)", "lst_diff", "nearest", "modis"),
    "mod13_ndvi": ("MODIS MOD13A2/MYD13A2 NDVI (HDF, 16-day)", "ndvi", "nearest", "modis"),
    "mcd43_albedo": ("MODIS MCD43A3 albedo (HDF)", "albedo", "nearest", "modis"),
    "mod09": ("MODIS MOD09GA/MOD09A1 reflectance to NDVI or albedo (HDF)", "ndvi", "nearest", "modis"),
    "reanalysis": ("Reanalysis background: ERA5/ERA5-Land/ERA-Interim (netCDF, GRIB), GLDAS Noah", "lst_background",
                   "bilinear", "reanalysis"),
    "ts_cells": ("Time-series cells (QA4SM/pytesmo netCDF: ESA CCI, SMAP, SMOS-IC, GLDAS)", "ssm", "nearest", "coarse"),
}
PLATFORM_RULES = ("terra_then_aqua", "aqua_then_terra", "terra", "aqua", "mean")
RESAMPLINGS = ("auto", "nearest", "bilinear", "average")


@dataclass(frozen=True)
class ImportOptions:
    """Every choice of the importer; only those of ``product`` matter.

    product: a key of :data:`PRODUCTS`.
    lprm_band: ``c1`` (6.9 GHz), ``c2`` (7.3 GHz) or ``x`` (10.7 GHz).
    overpass_pass: LPRM and JAXA: ``D`` (descending, 01:30, night), ``A`` (ascending,
        13:30, day) or ``any`` (both, the descending value first where both exist: nighttime
        retrievals suffer less from thermal gradients).
    max_error: LPRM: reject pixels whose retrieval error exceeds this (m3/m3; None = keep).
    esa_flag_zero_only: ESA CCI: keep only ``flag == 0``; time-series cells: the product's
        quality flag (CCI ``flag``, SMAP ``retrieval_qual_flag`` bit 0, SMOS-IC ``Quality_Flag``).
    max_uncertainty: ESA CCI: reject ``sm_uncertainty`` above this (m3/m3; None = keep).
    smap_overpass: ``AM`` (06:00) or ``PM`` (18:00). smap_recommended_only: retrieval
        quality bit 0 must be 0.
    generic_units: units of a generic raster (``m3/m3``, ``percent``, ``K``, ``celsius``, ``1``).
    lst_night: MOD11: night LST instead of day. lst_qc: ``good``, ``error_1k``,
        ``error_2k`` (default) or ``error_3k``.
    ndvi_max_reliability: MOD13: 0 good only, 1 also marginal.
    albedo_kind: MCD43A3 ``white``, ``black`` or ``blue``; diffuse_fraction (0..1) for blue.
    full_inversion_only: MCD43A3: reject magnitude inversions.
    mod09_output: ``ndvi`` or ``albedo`` (Liang 2001). cloud_mask: MOD09 state bits.
    platform_rule: Terra/Aqua files of one day: ``terra_then_aqua`` (Terra, Aqua where
        Terra has none), ``aqua_then_terra``, ``terra``, ``aqua`` (the other is skipped)
        or ``mean``.
    composite_as_daily: 16-day composites (MOD13) written for each day they cover.
    composite_days: days a composite covers (16 for MOD13).
    reanalysis_variable: ``skt``, ``t2m``, ``AvgSurfT_inst`` (GLDAS) or ``swvl1``.
    overpass_hours: local solar time (h) of the reanalysis step: 10.5 Terra, 13.5 Aqua.
    time_method: ``nearest`` step or ``linear`` in time. max_gap_hours: at most this far.
    resampling: onto a target grid: ``auto`` (average when the target is more than
        1.5 times coarser, else the product's default: nearest for retrievals and
        MODIS, bilinear for reanalysis), ``nearest``, ``bilinear`` or ``average``.
    prefix: output file prefix (None = the product's).
    """

    product: str = "lprm"
    lprm_band: str = "c1"
    overpass_pass: str = "any"
    max_error: float | None = None
    esa_flag_zero_only: bool = True
    max_uncertainty: float | None = None
    smap_overpass: str = "AM"
    smap_recommended_only: bool = True
    generic_units: str = "m3/m3"
    lst_night: bool = False
    lst_qc: str = "error_2k"
    ndvi_max_reliability: int = 1
    albedo_kind: str = "blue"
    diffuse_fraction: float = 0.2
    full_inversion_only: bool = False
    mod09_output: str = "ndvi"
    cloud_mask: bool = True
    platform_rule: str = "terra_then_aqua"
    composite_as_daily: bool = True
    composite_days: int = 16
    reanalysis_variable: str = "skt"
    overpass_hours: float = 10.5
    time_method: str = "nearest"
    max_gap_hours: float = 6.0
    resampling: str = "auto"
    prefix: str | None = None

    def __post_init__(self) -> None:
        from .mcd43 import KINDS
        from .mod09 import OUTPUTS
        from .modis_lst import QC_CHOICES
        from .reanalysis import VARIABLES

        checks = [
            ("product", self.product, tuple(PRODUCTS)),
            ("lprm_band", self.lprm_band, ("c1", "c2", "x")),
            ("overpass_pass", self.overpass_pass, ("any", "A", "D")),
            ("smap_overpass", self.smap_overpass, ("AM", "PM")),
            ("lst_qc", self.lst_qc, QC_CHOICES),
            ("albedo_kind", self.albedo_kind, KINDS),
            ("mod09_output", self.mod09_output, OUTPUTS),
            ("platform_rule", self.platform_rule, PLATFORM_RULES),
            ("reanalysis_variable", self.reanalysis_variable, tuple(VARIABLES)),
            ("time_method", self.time_method, ("nearest", "linear")),
            ("resampling", self.resampling, RESAMPLINGS),
            ("generic_units", self.generic_units, ("m3/m3", "percent", "K", "celsius", "1")),
        ]
        for name, value, allowed in checks:
            if value not in allowed:
                raise ProductError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        if not 0.0 <= self.diffuse_fraction <= 1.0:
            raise ProductError(f"diffuse_fraction: {self.diffuse_fraction} outside 0..1")
        if self.ndvi_max_reliability not in (0, 1):
            raise ProductError("ndvi_max_reliability: 0 (good only) or 1 (also marginal)")
        if not 0.0 <= self.overpass_hours < 24.0:
            raise ProductError(f"overpass_hours: {self.overpass_hours} outside 0..24")
        if self.max_gap_hours <= 0 or self.composite_days < 1:
            raise ProductError("max_gap_hours and composite_days must be positive")

    @property
    def label(self) -> str:
        return PRODUCTS[self.product][0]

    @property
    def kind(self) -> str:
        return PRODUCTS[self.product][3]

    @property
    def out_prefix(self) -> str:
        if self.prefix:
            return self.prefix
        if self.product == "mod11_lst" and self.lst_night:
            return "lst_night"
        if self.product == "mod09" and self.mod09_output == "albedo":
            return "albedo"
        if self.product == "reanalysis" and self.reanalysis_variable == "swvl1":
            return "ssm_reanalysis"
        return PRODUCTS[self.product][1]

    @property
    def is_composite(self) -> bool:
        return self.product == "mod13_ndvi" and self.composite_as_daily


def read_file(path: str | Path, options: ImportOptions) -> ProductDay:
    """One file of ``options.product`` on its native grid (not for reanalysis: see
    :mod:`.reanalysis`)."""
    o = options
    if o.product == "lprm":
        from .lprm import read_lprm

        return read_lprm(path, o.lprm_band, o.max_error)
    if o.product == "jaxa":
        from .jaxa import read_jaxa_l3

        return read_jaxa_l3(path)
    if o.product == "smap":
        from .smap import read_smap_l3

        return read_smap_l3(path, o.smap_overpass, o.smap_recommended_only)
    if o.product == "esa_cci":
        from .esa_cci import read_esa_cci

        return read_esa_cci(path, o.esa_flag_zero_only, o.max_uncertainty)
    if o.product == "generic":
        from .generic import read_generic

        return read_generic(path, o.generic_units)
    if o.product == "mod11_lst":
        from .modis_lst import read_mod11

        return read_mod11(path, o.lst_night, o.lst_qc)
    if o.product == "mod11_lst_diff":
        from .modis_lst import read_mod11_difference

        return read_mod11_difference(path, o.lst_qc)
    if o.product == "mod13_ndvi":
        from .modis_vi import read_mod13

        return read_mod13(path, o.ndvi_max_reliability)
    if o.product == "mcd43_albedo":
        from .mcd43 import read_mcd43a3

        return read_mcd43a3(path, o.albedo_kind, o.diffuse_fraction, o.full_inversion_only)
    if o.product == "mod09":
        from .mod09 import read_mod09

        return read_mod09(path, o.mod09_output, o.cloud_mask)
    raise ProductError(f"{options.product}: not read file by file")
