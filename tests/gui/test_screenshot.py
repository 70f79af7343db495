"""``make screenshot``: QGIS under Xvfb opens the demo project (written by ``make demo``) with
the plugin and saves a screenshot that is not blank."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from ssm_testing import ROOT

pytestmark = pytest.mark.slow


def _reference_desktop() -> bool:
    """The screenshot is taken with the system's QGIS (3.22, the reference desktop of
    ``make screenshot``); the QGIS 3.44 test root runs the logic tests only, so a desktop
    start-up there (no session bus, other fonts) cannot make the suite flaky."""
    from qgis.core import Qgis

    return Qgis.QGIS_VERSION_INT < 32400 and shutil.which("xvfb-run") is not None and shutil.which("qgis") is not None


@pytest.mark.skipif(not _reference_desktop(), reason="needs xvfb-run and the system's QGIS desktop (3.22)")
def test_screenshot_of_a_small_demo(tmp_path):
    demo = tmp_path / "demo"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(demo), "--size-km", "72",
                        "--days", "5"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (demo / "demo.qgz").exists()
    out = tmp_path / "shot.png"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshot.py"), "--project", str(demo / "demo.qgz"),
                        "--out", str(out)], capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    from qgis.PyQt.QtGui import QImage

    img = QImage(str(out))
    assert img.width() >= 1000 and img.height() >= 700
    # not blank: many distinct colours, and the map area is not one flat colour
    small = img.scaled(200, 125)
    px = np.array([[small.pixel(x, y) & 0xFFFFFF for x in range(small.width())] for y in range(small.height())])
    assert len(np.unique(px)) > 200
    centre = px[30:90, 40:140]
    assert len(np.unique(centre)) > 30
