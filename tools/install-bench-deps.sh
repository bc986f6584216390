#!/usr/bin/env bash
# System packages the bench needs (Debian): wrk and hey, the low-cost load generators.
set -euo pipefail
missing=()
for tool in wrk hey; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    echo "installing ${missing[*]} (bench load generators)..."
    $SUDO apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
