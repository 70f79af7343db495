#!/usr/bin/env bash
# Runs the Processing and GUI tests on QGIS 3.44 LTR (Qt5), the newest 3.x, in a Debian
# testing ("forky") root built with debootstrap under build/qgis344/root.
#
#   scripts/qgis344.sh [pytest arguments]      (make test-qgis344 PYTEST_ARGS=...)
#
# Needs root (sudo otherwise: debootstrap, chroot, bind mounts), the Debian mirror and PyPI;
# nothing else from the network. The root is built once (about 2.4 GB, 9 minutes on a fresh
# 2-core machine) and reused (then about 3.5 minutes for the tests); the work tree
# is bind-mounted read-only at /src, the plugin link and every cache live in /build inside
# the root. QGIS_SUITE / DEBIAN_MIRROR override the suite and the mirror.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASE=${QGIS344_DIR:-$ROOT/build/qgis344}
CHROOT="$BASE/root"
SUITE=${QGIS_SUITE:-forky}
# the Debian mirror this machine's apt already uses (the first .../debian URI), unless given
MIRROR=${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -oE '(https?|file)://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)}
PKGS=(qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-numpy python3-scipy python3-numba
      python3-sklearn python3-matplotlib python3-pytest python3-venv python3-pip xvfb xauth
      ca-certificates)

cleanup() {
  for m in src proc dev/pts dev; do
    mountpoint -q "$CHROOT/$m" 2>/dev/null && umount -l "$CHROOT/$m" || true
  done
}
if [ "${1:-}" = "--unmount" ]; then  # make clean: nothing of the work tree may stay mounted
  cleanup
  exit 0
fi
# debootstrap, chroot and mount need root: ask sudo, as scripts/setup.sh does
[ "$(id -u)" -eq 0 ] || exec sudo --preserve-env=QGIS344_DIR,QGIS_SUITE,DEBIAN_MIRROR "$0" "$@"
mkdir -p "$BASE"
exec 9> "$BASE/.lock"
flock 9  # one run per root at a time: they share its mounts
cleanup  # whatever a killed run left mounted
trap cleanup EXIT


# debootstrap itself: the host's, or the Debian package unpacked under build/ (no dpkg lock)
if command -v debootstrap >/dev/null; then
  DEBOOTSTRAP=(debootstrap)
  SCRIPTS=/usr/share/debootstrap/scripts
else
  if [ ! -x "$BASE/tools/usr/sbin/debootstrap" ]; then
    (cd "$BASE" && apt-get download -qq debootstrap >/dev/null 2>&1 && dpkg-deb -x debootstrap_*.deb tools)
  fi
  export DEBOOTSTRAP_DIR="$BASE/tools/usr/share/debootstrap"
  DEBOOTSTRAP=("$BASE/tools/usr/sbin/debootstrap")
  SCRIPTS="$DEBOOTSTRAP_DIR/scripts"
fi


in_root() { chroot "$CHROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/build/home LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

t0=$(date +%s)
if [ ! -f "$BASE/.root-ready" ]; then
  [ -n "$MIRROR" ] || { echo "qgis344: no Debian mirror in /etc/apt; set DEBIAN_MIRROR" >&2; exit 2; }
  echo "qgis344: debootstrap $SUITE from $MIRROR into $CHROOT"
  rm -rf --one-file-system "$CHROOT"
  # bookworm's debootstrap has no script for forky; every later suite uses the sid script
  "${DEBOOTSTRAP[@]}" --variant=minbase "$SUITE" "$CHROOT" "$MIRROR" "$SCRIPTS/sid" > "$BASE/debootstrap.log" 2>&1 \
    || { tail -20 "$BASE/debootstrap.log" >&2; exit 1; }
  cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' > "$CHROOT/usr/sbin/policy-rc.d"; chmod +x "$CHROOT/usr/sbin/policy-rc.d"
  # a mirror may serve a frozen snapshot whose Release file is past its Valid-Until date
  echo 'Acquire::Check-Valid-Until "false";' > "$CHROOT/etc/apt/apt.conf.d/99ssm-no-valid-until"
  touch "$BASE/.root-ready"
fi
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
# trust what the host trusts (a site proxy's CA, for PyPI through it)
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$CHROOT/usr/local/share/ca-certificates"
  if ! cmp -s <(cat /usr/local/share/ca-certificates/*.crt) <(cat "$CHROOT"/usr/local/share/ca-certificates/*.crt 2>/dev/null); then
    cp /usr/local/share/ca-certificates/*.crt "$CHROOT/usr/local/share/ca-certificates/"
    [ -x "$CHROOT/usr/sbin/update-ca-certificates" ] && in_root update-ca-certificates >/dev/null 2>&1 || true
  fi
fi
missing=()
for p in "${PKGS[@]}"; do
  in_root dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "qgis344: installing ${missing[*]}"
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends "${missing[@]}" > "$BASE/apt.log" 2>&1 \
    || { tail -20 "$BASE/apt.log" >&2; exit 1; }
  in_root apt-get clean
  in_root update-ca-certificates >/dev/null 2>&1 || true
fi

mkdir -p "$CHROOT/src" "$CHROOT/build"
mount --bind "$ROOT" "$CHROOT/src"
mount -o remount,bind,ro "$CHROOT/src" 2>/dev/null || true
mount -t proc proc "$CHROOT/proc"
mount --bind /dev "$CHROOT/dev"
mountpoint -q "$CHROOT/dev/pts" || mount --bind /dev/pts "$CHROOT/dev/pts" 2>/dev/null || true

# a venv that sees Debian's QGIS, numpy 2 and scipy; the test tools from PyPI
want=$(sha256sum "$ROOT/requirements-qgis344.txt" | cut -c1-16)
if [ ! -f "$CHROOT/build/venv/.stamp" ] || [ "$(cat "$CHROOT/build/venv/.stamp")" != "$want" ]; then
  echo "qgis344: installing the test tools into /build/venv"
  in_root python3 -m venv --system-site-packages /build/venv
  in_root env PIP_CERT=/etc/ssl/certs/ca-certificates.crt /build/venv/bin/python -m pip install -q --disable-pip-version-check \
    -r /src/requirements-qgis344.txt > "$BASE/pip.log" 2>&1 || { tail -20 "$BASE/pip.log" >&2; exit 1; }
  echo "$want" > "$CHROOT/build/venv/.stamp"
fi
t1=$(date +%s)

mkdir -p "$CHROOT/build/plugins" "$CHROOT/build/home" "$CHROOT/build/xdg/"{config,cache,data,runtime} "$CHROOT/build/tmp"
chmod 700 "$CHROOT/build/xdg/runtime"
ln -sfn /src "$CHROOT/build/plugins/ssm_downscaling"
echo "qgis344: $(in_root python3 -c 'from qgis.core import Qgis; print("QGIS", Qgis.version())' 2>/dev/null)"

case " $* " in *" tests/"*) ;; *) set -- tests/processing tests/gui "$@" ;; esac
TEST_ENV=(PATH=/build/venv/bin:/usr/bin:/bin HOME=/build/home LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen
          XDG_CONFIG_HOME=/build/xdg/config XDG_CACHE_HOME=/build/xdg/cache XDG_DATA_HOME=/build/xdg/data
          XDG_RUNTIME_DIR=/build/xdg/runtime NUMBA_CACHE_DIR=/build/numba-cache MPLCONFIGDIR=/build/mpl
          QGIS_PLUGINPATH=/build/plugins PYTHONPATH=/build/plugins PYTHONDONTWRITEBYTECODE=1 TMPDIR=/build/tmp)
# qgis_process loads the plugin from the profile under XDG_DATA_HOME once it is enabled (exit 1: already)
chroot "$CHROOT" /usr/bin/env -i "${TEST_ENV[@]}" qgis_process.bin plugins enable ssm_downscaling >/dev/null 2>&1 || true
set +e
chroot "$CHROOT" /usr/bin/env -i "${TEST_ENV[@]}" \
  /bin/sh -c 'cd /src && exec python -m pytest -p no:cacheprovider "$@"' pytest "$@"
rc=$?
set -e
t2=$(date +%s)
echo "qgis344: set-up $((t1 - t0)) s, tests $((t2 - t1)) s, exit $rc"
exit $rc
