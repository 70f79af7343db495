"""Exceptions raised by ``core``; the Processing adapters turn them into
``QgsProcessingException`` with the same message."""

from __future__ import annotations


class SsmError(ValueError):
    """Bad input or a state the user can fix; the message names the file and the problem."""


class GridError(SsmError):
    """Grids that do not overlap, a CRS that cannot be transformed, a broken geotransform."""


class RasterReadError(SsmError):
    """A raster that cannot be opened or read."""


class SeriesError(SsmError):
    """A daily series without dated files, without the requested days, or inconsistent."""


class Cancelled(Exception):
    """Raised by core functions when the caller's ``is_cancelled()`` returns True."""
