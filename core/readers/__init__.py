"""Readers of the agencies' products and the importer that turns them into daily series.

One module per product family returns :class:`~.base.ProductDay` objects (dated float32
arrays on the product's native grid, SI units, fill and quality masks applied, checked
for plausible units): :mod:`.lprm`, :mod:`.jaxa`, :mod:`.smap`, :mod:`.esa_cci`,
:mod:`.generic`, :mod:`.modis_lst`, :mod:`.modis_vi`, :mod:`.mcd43`, :mod:`.mod09`,
:mod:`.reanalysis`. :func:`import_product` writes a batch onto a target grid;
:mod:`.derived` makes the day-night LST difference and daily values from composites;
:mod:`.granules` lists the files an extent and a date range need.
"""

from .base import ProductDay, ProductError, check_units
from .derived import composites_as_daily, day_night_difference
from .granules import granules, write_granule_list
from .importer import ImportSummary, import_product, list_inputs
from .products import PRODUCTS, ImportOptions, read_file

__all__ = [
    "PRODUCTS",
    "ImportOptions",
    "ImportSummary",
    "ProductDay",
    "ProductError",
    "check_units",
    "composites_as_daily",
    "day_night_difference",
    "granules",
    "import_product",
    "list_inputs",
    "read_file",
    "write_granule_list",
]
