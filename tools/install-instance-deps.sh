#!/usr/bin/env bash
# Host packages the simulated-instance tests need (Debian): debootstrap builds the instances'
# root filesystem, systemd-container provides systemd-nspawn to boot it.
# Installing systemd-container adds `mymachines` to /etc/nsswitch.conf; the host's file is
# kept exactly as it was (nothing here depends on that module).
set -euo pipefail
missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null 2>&1 || missing+=(systemd-container)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
saved="$(mktemp)"
$SUDO cp -p /etc/nsswitch.conf "$saved"
restore() { $SUDO cp -p "$saved" /etc/nsswitch.conf; rm -f "$saved"; }
trap restore EXIT
echo "installing ${missing[*]} (simulated EC2 instances)..."
$SUDO apt-get update -qq -o DPkg::Lock::Timeout=600 || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends "${missing[@]}" >/dev/null
