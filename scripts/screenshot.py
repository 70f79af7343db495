#!/usr/bin/env python3
"""``make screenshot``: start the QGIS desktop under Xvfb with the plugin, open the demo
project that ``make demo`` wrote (``build/demo/demo.qgz``) with the daily viewer on a
mid-season day, and save ``docs/screenshot.png``.

    python scripts/screenshot.py [--project build/demo/demo.qgz] [--out docs/screenshot.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def screenshot(project: Path, out: Path, timeout: float = 240) -> Path:
    """Take the screenshot; raises SystemExit with QGIS's log when it fails."""
    if shutil.which("xvfb-run") is None or shutil.which("qgis") is None:
        raise SystemExit("screenshot: needs xvfb-run and qgis (make setup installs them)")
    profiles = ROOT / "build" / "screenshot-profile"
    shutil.rmtree(profiles, ignore_errors=True)
    profiles.mkdir(parents=True)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".log").unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    for key in ("QT_QPA_PLATFORM", "QGIS_CUSTOM_CONFIG_PATH", "QGIS_OPTIONS_PATH"):
        env.pop(key, None)
    env.update(SSM_SHOT_PROJECT=str(project.resolve()), SSM_SHOT_OUT=str(out),
               SSM_SHOT_DEMO=str(project.resolve().parent),
               QGIS_PLUGINPATH=str(ROOT / "build" / "plugins"))
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", "qgis", "--noversioncheck", "--nologo",
           "--profiles-path", str(profiles), "--code", str(ROOT / "scripts" / "screenshot_qgis.py")]
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        code = r.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    log = out.with_suffix(".log")
    if not out.exists():
        details = log.read_text() if log.exists() else ""
        raise SystemExit(f"screenshot failed ({code}):\n{details}")
    log.unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=ROOT / "build" / "demo" / "demo.qgz")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    args = ap.parse_args(argv)
    if not args.project.exists():
        raise SystemExit(f"{args.project} not found: run `make demo` first")
    print(screenshot(args.project, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
