"""Which optional Python dependencies are missing, and how to install them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Dependency:
    module: str
    package: str
    purpose: str
    required: bool = False


DEPENDENCIES = (
    Dependency("numpy", "numpy", "arrays", required=True),
    Dependency("scipy", "scipy", "interpolation and statistics", required=True),
    Dependency("osgeo.gdal", "GDAL", "raster input/output", required=True),
    Dependency("numba", "numba", "fast compiled kernels (without it the same results are computed more slowly)"),
    Dependency("sklearn", "scikit-learn", "the random-forest downscaling method"),
    Dependency("matplotlib", "matplotlib", "plots in validation reports"),
    Dependency("threadpoolctl", "threadpoolctl",
               "BLAS kept on one thread in a run: output bytes that do not depend on the number of cores"),
)

INSTALL_HINTS = {
    "Debian/Ubuntu": "sudo apt install {debian}",
    "Windows (OSGeo4W Shell)": "python -m pip install {pip}",
    "conda": "conda install -c conda-forge {conda}",
}

_DEBIAN = {"numba": "python3-numba", "scikit-learn": "python3-sklearn", "matplotlib": "python3-matplotlib",
           "scipy": "python3-scipy", "threadpoolctl": "python3-threadpoolctl", "numpy": "python3-numpy", "GDAL": "python3-gdal"}


def missing_dependencies() -> list[Dependency]:
    """The dependencies that cannot be imported in this Python."""
    out = []
    for dep in DEPENDENCIES:
        try:
            importlib.import_module(dep.module)
        except Exception:  # ImportError, or a broken install raising something else
            out.append(dep)
    return out


def install_hint(deps: list[Dependency]) -> str:
    """One line per platform with the command that installs ``deps``."""
    if not deps:
        return ""
    pkgs = [d.package for d in deps]
    debian = " ".join(_DEBIAN.get(p, p) for p in pkgs)
    lines = [
        f"{platform}: " + cmd.format(debian=debian, pip=" ".join(pkgs), conda=" ".join(pkgs))
        for platform, cmd in INSTALL_HINTS.items()
    ]
    return "\n".join(lines)


def describe_missing(deps: list[Dependency]) -> str:
    """A short user-facing message naming what is missing, what it is for, and how to get it."""
    if not deps:
        return ""
    what = "; ".join(f"{d.package} ({d.purpose})" for d in deps)
    return f"Missing Python packages: {what}.\n{install_hint(deps)}"
