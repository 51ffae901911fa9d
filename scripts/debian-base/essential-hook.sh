#!/bin/sh
# mmdebstrap --essential-hook of scripts/make-debian-base.sh: runs after the
# Essential:yes packages are in, before the kernel and dracut are installed,
# so the one initramfs dracut builds during that install is already a live
# one: dmsquash-live (root=live:CDLABEL=...), not host-only, zstd.
#   essential-hook.sh CHROOT
set -eu
root=${1:?usage: essential-hook.sh CHROOT}
mkdir -p "$root/etc/dracut.conf.d"
cat > "$root/etc/dracut.conf.d/10-live.conf" <<'CONF'
# edgeforge Debian test base: boot from a Kairos-style live ISO.
add_dracutmodules+=" dmsquash-live "
hostonly="no"
compress="zstd"
CONF
