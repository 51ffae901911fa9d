#!/usr/bin/env bash
# mmdebstrap --customize-hook of scripts/make-debian-base.sh: checks the
# installed system (one kernel, an initramfs with dmsquash-live, the files the
# second layer deletes or replaces) and writes the second layer's tree, the
# "Kairos bits", to $DEBIAN_BASE_WORK/layer2 without changing the chroot
# (the chroot becomes layer 1 as it is). Facts for the caller go to
# $DEBIAN_BASE_WORK/facts (shell assignments).
#   DEBIAN_BASE_WORK=DIR customize-hook.sh CHROOT
set -euo pipefail
root=${1:?usage: customize-hook.sh CHROOT}
work=${DEBIAN_BASE_WORK:?DEBIAN_BASE_WORK is not set}
files=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/files
die() { echo "make-debian-base: $*" >&2; exit 1; }

# Exactly one kernel, with its versioned kernel and initrd in /boot.
kvers=$(ls "$root/lib/modules")
[ "$(echo "$kvers" | wc -w)" -eq 1 ] || die "want exactly one kernel under /lib/modules, found: ${kvers:-none}"
kver=$kvers
[ -f "$root/boot/vmlinuz-$kver" ] || die "no /boot/vmlinuz-$kver"
[ -f "$root/boot/initrd.img-$kver" ] || die "no /boot/initrd.img-$kver (did dracut run?)"
listing=$(chroot "$root" lsinitrd -m "/boot/initrd.img-$kver" 2>/dev/null) || die "lsinitrd -m /boot/initrd.img-$kver failed"
modules=$(sed -n '/^dracut modules:$/,/^=/p' <<<"$listing" | grep -E '^[a-z0-9_-]+$' || true)
if ! grep -qx 'dmsquash-live' <<<"$modules"; then
  die "the initramfs /boot/initrd.img-$kver has no dmsquash-live dracut module, so it cannot boot root=live:...; its modules: $(tr '\n' ' ' <<<"$modules")"
fi
# shellcheck disable=SC1091
. "$root/etc/os-release"
echo "debian base: kernel $kver, initramfs $(du -m "$root/boot/initrd.img-$kver" | cut -f1) MB with dmsquash-live ($(wc -l <<<"$modules") dracut modules)" >&2

# What the second layer deletes (whiteout), empties and refills (opaque
# directory) and replaces: all must be there in layer 1 to mean something.
whiteout=etc/cron.daily/apt-compat
opaque=etc/update-motd.d
replaced=(etc/hostname etc/motd etc/machine-id)
[ -f "$root/$whiteout" ] || die "/$whiteout, which layer 2 deletes, is not in the installed system"
[ -n "$(ls -A "$root/$opaque" 2>/dev/null)" ] || die "/$opaque, which layer 2 makes opaque, is missing or empty"
for f in "${replaced[@]}"; do
  [ -f "$root/$f" ] || die "/$f, which layer 2 replaces, is not in the installed system"
done

l2=$work/layer2
rm -rf "$l2"
mkdir -p "$l2"
put() { # put MODE PATH [SOURCE]: a file of layer 2 (from files/ unless SOURCE)
  local mode=$1 path=$2 src=${3:-$files/$2}
  mkdir -p "$(dirname "$l2/$path")"
  install -m "$mode" "$src" "$l2/$path"
}
put 0644 etc/hostname
put 0644 etc/motd
put 0644 etc/machine-id /dev/null       # empty: systemd uses a transient id, no first-boot setup
put 0644 etc/systemd/system/edgeforge-report.service
put 0755 usr/local/sbin/edgeforge-report
put 0644 etc/modprobe.d/edgeforge-fixture.conf
mkdir -p "$l2/etc/systemd/system/multi-user.target.wants"
ln -s ../edgeforge-report.service "$l2/etc/systemd/system/multi-user.target.wants/edgeforge-report.service"
# Opaque directory: hides all of layer 1's /etc/update-motd.d, then one new file.
put 0644 "$opaque/.wh..wh..opq" /dev/null
put 0755 "$opaque/10-edgeforge"
# Whiteout: deletes layer 1's /etc/cron.daily/apt-compat.
put 0644 "$(dirname "$whiteout")/.wh.$(basename "$whiteout")" /dev/null
# Kairos layout: /boot/vmlinuz and /boot/initrd, /etc/kairos-release.
mkdir -p "$l2/boot"
ln -s "vmlinuz-$kver" "$l2/boot/vmlinuz"
ln -s "initrd.img-$kver" "$l2/boot/initrd"
cat > "$l2/etc/kairos-release" <<REL
KAIROS_ID="kairos"
KAIROS_ID_LIKE="kairos-core-${ID}-${VERSION_ID}"
KAIROS_NAME="kairos-core-${ID}-${VERSION_ID}"
KAIROS_VERSION="v3.2.1"
KAIROS_ARCH="amd64"
KAIROS_TARGETARCH="amd64"
KAIROS_FLAVOR="${ID}"
KAIROS_FLAVOR_RELEASE="${VERSION_ID}"
KAIROS_FAMILY="${ID}"
KAIROS_MODEL="generic"
KAIROS_VARIANT="core"
KAIROS_BUG_REPORT_URL="https://github.com/kairos-io/kairos/issues"
KAIROS_HOME_URL="https://github.com/kairos-io/kairos"
KAIROS_RELEASE="v3.2.1"
KAIROS_FIPS="false"
KAIROS_TRUSTED_BOOT="false"
REL
chmod 0644 "$l2/etc/kairos-release"
# Directories of layer 2 keep layer 1's modes (a tar entry sets them).
while IFS= read -r -d '' d; do
  rel=${d#"$l2"}
  if [ -n "$rel" ] && [ -d "$root$rel" ]; then chmod --reference="$root$rel" "$d"; else chmod 0755 "$d"; fi
done < <(find "$l2" -type d -print0)

cat > "$work/facts" <<FACTS
kver=$kver
os_id=$ID
os_version=$VERSION_ID
FACTS
