"""The plugin zip installs into a fresh profile and loads; the provider is visible to
qgis_process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from ssm_testing import ROOT, qgis_process_env, run_qgis_process


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "package.py"), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (zip_path,) = out.glob("ssm_downscaling-*.zip")
    return zip_path


def test_zip_holds_only_the_plugin(plugin_zip):
    names = zipfile.ZipFile(plugin_zip).namelist()
    assert all(n.startswith("ssm_downscaling/") for n in names)
    for needed in ("__init__.py", "metadata.txt", "LICENSE", "core/grid.py", "processing_provider/provider.py",
                   "ssm_plugin/plugin.py", "ssm_plugin/icons/icon.svg"):
        assert f"ssm_downscaling/{needed}" in names
    for banned in ("tests/", "benchmarks/", "scripts/", ".ci/", "Makefile", "build/", "__pycache__", ".pyc",
                   "pyproject.toml", "requirements-dev.txt", ".git/"):
        assert not any(banned in n for n in names), banned
    # deterministic
    out2 = plugin_zip.parent / "again"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "package.py"), "--out", str(out2)], check=True,
                   capture_output=True)
    assert (out2 / plugin_zip.name).read_bytes() == plugin_zip.read_bytes()


def test_zip_installs_into_a_fresh_profile_and_loads(plugin_zip, tmp_path):
    plugins = tmp_path / "profile" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(plugin_zip).extractall(plugins)
    xdg = tmp_path / "xdg"
    env = {
        "QGIS_PLUGINPATH": str(plugins),
        "XDG_CONFIG_HOME": str(xdg / "config"),
        "XDG_DATA_HOME": str(xdg / "data"),
        "XDG_CACHE_HOME": str(xdg / "cache"),
        "PYTHONPATH": "",
    }
    r = run_qgis_process(["plugins", "enable", "ssm_downscaling"], **env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_qgis_process(["list"], **env)
    assert r.returncode == 0, r.stderr
    assert "Soil moisture downscaling" in r.stdout
    # the desktop: a real QGIS under a virtual screen, fresh profile with the plugin enabled
    profiles = tmp_path / "profiles"
    default = profiles / "profiles" / "default"
    (default / "python").mkdir(parents=True)
    zipfile.ZipFile(plugin_zip).extractall(default / "python" / "plugins")
    (default / "QGIS").mkdir()
    (default / "QGIS" / "QGIS3.ini").write_text("[PythonPlugins]\nssm_downscaling=true\n")
    result = tmp_path / "result.txt"
    code = tmp_path / "check.py"
    code.write_text(textwrap.dedent(
        f"""
        import qgis.utils
        from qgis.core import QgsApplication
        from qgis.PyQt.QtCore import QTimer
        plugin = qgis.utils.plugins.get("ssm_downscaling")
        ids = [p.id() for p in QgsApplication.processingRegistry().providers()]
        mod = __import__("ssm_downscaling")
        with open({str(result)!r}, "w") as f:
            f.write(f"{{plugin is not None}} {{'ssm' in ids}} {{mod.__file__}}")
        QTimer.singleShot(200, qgis.utils.iface.actionExit().trigger)
        """
    ))
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "qgis", "--noversioncheck", "--nologo",
           "--profiles-path", str(profiles), "--code", str(code)]
    desktop_env = qgis_process_env(**{**env, "QGIS_PLUGINPATH": "", "QT_QPA_PLATFORM": "xcb"})
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=desktop_env)
    assert result.exists(), r.stdout + r.stderr
    loaded, registered, where = result.read_text().split(" ", 2)
    assert loaded == "True" and registered == "True", result.read_text()
    assert where.startswith(str(default)), where


def test_dev_provider_is_listed_by_qgis_process():
    r = run_qgis_process(["list"])
    assert r.returncode == 0, r.stderr
    assert "Soil moisture downscaling" in r.stdout
