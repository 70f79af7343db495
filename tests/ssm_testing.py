"""Helpers shared by the tests (importable as ``ssm_testing``: tests/ is on pythonpath)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
_KEEP: list = []  # the provider's Python object must outlive its use by the registry


def qgis_process_env(**extra: str) -> dict[str, str]:
    """Environment for ``qgis_process.bin``: headless, profile and caches under build/."""
    env = dict(os.environ)
    # pytest-qgis points QGIS_CUSTOM_CONFIG_PATH at .qgis-settings for the in-process app;
    # qgis_process uses the profile under XDG_DATA_HOME, where `make setup` enabled the plugin
    env.pop("QGIS_CUSTOM_CONFIG_PATH", None)
    env.pop("QGIS_OPTIONS_PATH", None)
    build = ROOT / "build"
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    for key, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data"),
                     ("XDG_RUNTIME_DIR", "runtime")):
        env.setdefault(key, str(build / "xdg" / sub))
    env.setdefault("QGIS_PLUGINPATH", str(build / "plugins"))
    env.setdefault("NUMBA_CACHE_DIR", str(build / "numba-cache"))
    env.update(extra)
    return env


def run_qgis_process(args: list[str], timeout: float = 600, **env_extra: str):
    """Run ``qgis_process.bin`` with ``args``; returns the CompletedProcess (text output)."""
    return subprocess.run(
        ["qgis_process.bin", *args], capture_output=True, text=True, timeout=timeout, env=qgis_process_env(**env_extra)
    )


def ensure_provider():
    """The processing registry with the plugin's provider (added again when a test of the
    plugin's unload removed it)."""
    from qgis.core import QgsApplication

    from ssm_downscaling.processing_provider.provider import SsmProvider

    reg = QgsApplication.processingRegistry()
    if reg.providerById("ssm") is None:
        _KEEP.append(SsmProvider())
        assert reg.addProvider(_KEEP[-1])
    return reg


def handle_results(alg, context, feedback=None, parameters=None) -> bool:
    """Load a run's results into the project as the toolbox does (Processing's
    ``handleAlgorithmResults``), without the GUI: QGIS >= 3.32 also hands the results to
    ``iface.layerTreeView()``, which pytest-qgis's iface stands in for with a mock."""
    from processing.gui import Postprocessing

    saved = getattr(Postprocessing, "iface", None)
    Postprocessing.iface = None
    try:
        return Postprocessing.handleAlgorithmResults(alg, context, feedback, parameters=parameters or {})
    finally:
        Postprocessing.iface = saved
