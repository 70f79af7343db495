#!/usr/bin/env bash
# One-time, idempotent set-up on Debian/Ubuntu: system packages (QGIS 3.22+, GDAL, numpy
# 1.x, scipy, numba, scikit-learn), a venv that sees them, the dev tools, and the link
# build/plugins/ssm_downscaling -> repository root. Writes nothing into $HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD="$ROOT/build"
SYSPY=/usr/bin/python3

APT_PKGS=(qgis python3-qgis qgis-providers python3-gdal gdal-bin xvfb xauth python3-venv
          python3-numpy python3-scipy python3-numba python3-sklearn python3-threadpoolctl python3-pytest
          python3-matplotlib python3-h5py python3-netcdf4
          python3-dask python3-distributed)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$BUILD/plugins" "$BUILD/xdg/config" "$BUILD/xdg/cache" "$BUILD/xdg/data" "$BUILD/xdg/runtime" \
         "$BUILD/numba-cache" "$BUILD/mpl"
chmod 700 "$BUILD/xdg/runtime"
ln -sfn "$ROOT" "$BUILD/plugins/ssm_downscaling"

if [ ! -x "$BUILD/venv/bin/python" ]; then
  echo "setup: creating $BUILD/venv (with the system's site-packages)"
  "$SYSPY" -m venv --system-site-packages "$BUILD/venv"
fi

# pin pip to the system's numerical stack so nothing replaces it
"$SYSPY" - > "$BUILD/constraints-system.txt" <<'PY'
import importlib.metadata as md
for name in ("numpy", "scipy", "pandas", "scikit-learn", "numba", "llvmlite", "matplotlib", "pytest", "pyproj", "shapely"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        pass
PY
stamp="$BUILD/venv/.requirements-stamp"
want=$(cat requirements-dev.txt constraints.txt "$BUILD/constraints-system.txt" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing dev tools into the venv"
  if ! "$BUILD/venv/bin/python" -m pip install -q --disable-pip-version-check \
      -c constraints.txt -c "$BUILD/constraints-system.txt" -r requirements-dev.txt > "$BUILD/pip.log" 2>&1; then
    grep -v "^WARNING: Location" "$BUILD/pip.log" >&2
    echo "setup: pip install failed (log: $BUILD/pip.log)" >&2
    exit 1
  fi
  "$BUILD/venv/bin/python" -c "import numpy, sys; assert numpy.__version__.startswith('1.'), numpy.__version__"
  echo "$want" > "$stamp"
fi

# let qgis_process see the plugin (exit code 1 means: already enabled)
export XDG_CONFIG_HOME="$BUILD/xdg/config" XDG_CACHE_HOME="$BUILD/xdg/cache" XDG_DATA_HOME="$BUILD/xdg/data" \
       XDG_RUNTIME_DIR="$BUILD/xdg/runtime" QT_QPA_PLATFORM=offscreen QGIS_PLUGINPATH="$BUILD/plugins"
qgis_process.bin plugins enable ssm_downscaling >/dev/null 2>&1 || true
echo "setup: ready (venv: $BUILD/venv, plugin link: $BUILD/plugins/ssm_downscaling)"
