#!/usr/bin/env bash
# Build the root filesystem of the simulated EC2 instances: Debian 12 (bookworm) with systemd
# as PID 1 and cloud-init, as on the Debian 12 AMI. Prints the path of the tarball.
#
# The tarball is cached as $IMGREC_ROOTFS_CACHE/rootfs-<hash of this script>.tar, outside the
# checkout by default (~/.cache/imgrec/rootfs), so fresh clones on one machine share it; it is
# rebuilt only when this script changes, and versions unused for a week are deleted. The
# packages come from the Debian mirror this machine's apt already uses (override:
# IMGREC_DEBIAN_MIRROR).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${IMGREC_ROOTFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imgrec/rootfs}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
hash="$(sha256sum "$0" | cut -c1-16)"
out="$cache/rootfs-$hash.tar"
if [ -f "$out" ]; then
    touch "$out"  # in use: not pruned
    echo "$out"
    exit 0
fi
find "$cache" -maxdepth 1 -name 'rootfs-*.tar' -mtime +7 | while read -r old; do
    rm -rf "${old%.tar}.d" "${old%.tar}.d.ok" "${old%.tar}.lock" "$old"
done
if [ "$(id -u)" != "0" ]; then
    echo "build-rootfs: debootstrap needs root" >&2
    exit 1
fi
bash "$here/install-instance-deps.sh" >&2

# The first Debian (not -security) mirror of the host's apt sources, deb822 or one-line format.
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' "$f"
    done
    if [ -f /etc/apt/sources.list ]; then
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
            /etc/apt/sources.list
    fi
}
mirror="${IMGREC_DEBIAN_MIRROR:-$(host_mirror | grep -v -- '-security' | grep -m1 '/debian/\?$' || true)}"
if [ -z "$mirror" ]; then
    echo "build-rootfs: no Debian mirror in /etc/apt/sources.list*; set IMGREC_DEBIAN_MIRROR" >&2
    exit 1
fi

work="$(mktemp -d "$cache/rootfs-build.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
root="$work/root"
packages=systemd,systemd-sysv,cloud-init,python3,python3-venv,python3-cffi-backend,dbus,iproute2
start=$(date +%s)
echo "build-rootfs: debootstrap bookworm from $mirror (about 2 minutes)..." >&2
if ! debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
    tail -n 40 "$work/debootstrap.log" >&2
    [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 40 "$root/debootstrap/debootstrap.log" >&2
    exit 1
fi

# cloud-init as on EC2, but seeded locally (NoCloud) and without touching the host's network.
# There is no SSH server (the containers share the host's network): the SSH modules are left
# out of the module lists rather than `ssh_genkeytypes: []`, and `locale` is the string "false"
# rather than the boolean: cloud-init 22.4's schema refuses both, a warning on every console.
cfg="$root/etc/cloud/cloud.cfg.d/90-imgrec-simulated.cfg"
cat >"$cfg" <<'EOF'
# Simulated EC2 instance (tools/build-rootfs.sh): the user data comes as a NoCloud seed.
datasource_list: [ NoCloud, None ]
network: {config: disabled}
locale: "false"
EOF
for list in cloud_init_modules:ssh cloud_config_modules:set-passwords; do
    awk -v name="${list%%:*}" -v drop="${list#*:}" '
        $0 == name ":" { on = 1; print; next }
        on && /^ *- / { if ($2 != drop) print; next }
        on { exit }' "$root/etc/cloud/cloud.cfg" >>"$cfg"
done
# No login prompt on the console: the harness only reads it.
ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"
ln -sf /dev/null "$root/etc/systemd/system/getty.target"
# Every instance gets its own machine id at first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo localhost >"$root/etc/hostname"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log

tar -C "$root" --numeric-owner -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "build-rootfs: $(du -sm "$root" | cut -f1) MB unpacked, $(( $(stat -c %s "$out") / 1048576 )) MB tar, $(( $(date +%s) - start )) s" >&2
echo "$out"
