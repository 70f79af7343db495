"""Reading one HDF5 dataset by its path: GDAL's multidimensional API first, h5py (optional,
imported only here) when GDAL cannot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal

from .base import ProductError


def read_dataset(path: str | Path, name: str) -> tuple[np.ndarray, dict]:
    """The raw values of HDF5 dataset ``name`` (``/group/dataset``) and its attributes."""
    p = Path(str(path))
    if not p.is_file():
        raise ProductError(f"{path}: no such file")
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ProductError(f"{path}: cannot be read: {exc}") from exc
    if head != b"\x89HDF\r\n\x1a\n":
        raise ProductError(f"{path}: is not an HDF5 file")
    err = None
    try:
        ds = gdal.OpenEx(str(p), gdal.OF_MULTIDIM_RASTER)
        arr = ds.GetRootGroup().OpenMDArrayFromFullname(name) if ds is not None else None
        if arr is not None:
            attrs = {}
            for a in arr.GetAttributes() or []:
                v = a.Read()
                attrs[a.GetName()] = v[0] if isinstance(v, (list, tuple)) and len(v) == 1 else v
            return np.asarray(arr.ReadAsArray()), attrs
    except RuntimeError as exc:
        err = exc
    try:
        import h5py
    except ImportError:
        raise ProductError(f"{path}: has no dataset {name} readable by GDAL ({err or 'not found'})") from None
    try:
        with h5py.File(p, "r") as f:
            if name not in f:
                raise ProductError(f"{path}: has no dataset {name} (is it the right product?)")
            d = f[name]
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in d.attrs.items()}
            attrs = {k: (v[0] if isinstance(v, np.ndarray) and v.size == 1 else v) for k, v in attrs.items()}
            return np.asarray(d[...]), attrs
    except OSError as exc:
        raise ProductError(f"{path}: cannot be read as HDF5 (truncated?): {exc}") from exc
