#!/bin/sh
# Installs the Debian packages unitwave uses, only those missing. As non-root, prints the exact
# apt line to run and stops.
set -eu
PACKAGES="espeak-ng libespeak-ng1 sox libc++1 chromium chromium-driver slurm-wlm munge"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "unitwave needs these system packages:$missing" >&2
    echo "Run as root:  apt-get update && apt-get install -y$missing" >&2
    echo "then run make again." >&2
    exit 1
fi
echo "Installing system packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
