#!/usr/bin/env bash
# Install the Debian packages that napari's Qt viewer needs under Xvfb.
#
# Idempotent: only packages that dpkg does not report as installed are
# installed, `apt-get update` runs once and only when something is missing,
# and sudo is used only when not running as root.
set -euo pipefail

packages=(
    xvfb xauth libgl1 libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
    libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0
    libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libfontconfig1 libdbus-1-3
)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup_system: all ${#packages[@]} system packages are installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_system: missing ${missing[*]} but apt-get is not available;" \
        "install them with your system's package manager" >&2
    exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi

echo "setup_system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
