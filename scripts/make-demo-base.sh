#!/usr/bin/env bash
# Makes the small Kairos-style demo base image as an OCI layout, from Debian
# packages (busybox-static; the kernel of linux-image-amd64, downloaded and
# unpacked, not installed), with no registry involved. /boot holds the kernel
# and a busybox initramfs (scripts/demo-base/init) that mounts the live medium
# and reports the embedded user-data's sha256 and the Secure Boot state; the
# same script is the root filesystem's /sbin/init, so a UKI whose initrd is
# the root filesystem reports the same way. Deterministic: the same
# packages give the same digests. OUT is rebuilt when this script or
# scripts/demo-base/ changed (recorded in OUT/.inputs).
#   scripts/make-demo-base.sh [OUT_DIR]     (default: .cache/demo-base)
set -euo pipefail
umask 022  # the layout's bytes must not depend on the caller's umask
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/.cache/demo-base}
inputs=$(cd "$here/scripts" && sha256sum make-demo-base.sh demo-base/* | sha256sum | cut -c1-16)
if [ -f "$out/index.json" ] && [ "$(cat "$out/.inputs" 2>/dev/null)" = "$inputs" ]; then
  echo "demo base: $out (exists)"
  exit 0
fi
busybox=$(dpkg -L busybox-static 2>/dev/null | grep -E '/bin/busybox$' | head -n1 || true)
if [ -z "$busybox" ] || [ ! -x "$busybox" ]; then
  echo "make-demo-base: busybox-static is not installed; run scripts/install-host-tools.sh" >&2
  exit 4
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The kernel: Debian's package, unpacked (cached beside the output).
debs=$here/.cache/debs
mkdir -p "$debs"
kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'; }
kpkg=$(kernel_package)
if [ -z "$kpkg" ] && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && kpkg=$(kernel_package)
fi
if [ -z "$kpkg" ]; then
  echo "make-demo-base: apt knows no linux-image-amd64; run apt-get update (scripts/install-host-tools.sh does)" >&2
  exit 4
fi
if ! ls "$debs/${kpkg}_"*.deb >/dev/null 2>&1; then
  (cd "$debs" && apt-get download -q "$kpkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
fi
deb=$(ls "$debs/${kpkg}_"*.deb | head -n1)
dpkg-deb -x "$deb" "$work/kernel"
kver=$(ls "$work/kernel/lib/modules")
# In load order: CD (sr_mod) and disk (sd_mod, for USB-stick style boots) over ATA.
# efivarfs, to read the SecureBoot variable.
modules="scsi_common scsi_mod cdrom sr_mod crct10dif_common crct10dif_generic crc-t10dif crc64 crc64_rocksoft_generic crc64-rocksoft t10-pi sd_mod libata ata_piix libahci ahci isofs loop squashfs efivarfs"

# The initramfs: busybox, the modules to reach a CD and a squashfs, /init.
initramfs=$work/initramfs
mkdir -p "$initramfs"/{bin,dev,proc,sys,lib/modules}
cp "$busybox" "$initramfs/bin/busybox"
for applet in sh mount umount insmod findfs grep cut tr sha256sum sleep sync poweroff echo mkdir cat ls sed head; do
  ln -s busybox "$initramfs/bin/$applet"
done
for m in $modules; do
  cp "$(find "$work/kernel/lib/modules/$kver" -name "$m.ko")" "$initramfs/lib/modules/"
done
for m in $modules; do echo "$m.ko"; done > "$initramfs/lib/modules/load-order"
install -m 0755 "$here/scripts/demo-base/init" "$initramfs/init"
find "$initramfs" -exec touch -h -d @0 {} +

root=$work/rootfs
mkdir -p "$root"/{lib/modules,bin,sbin,usr/bin,usr/sbin,etc/kairos,dev,proc,sys,tmp,run,var/log,root,boot,system/oem,oem,usr/local}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  case $applet in busybox) continue ;; esac
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cat > "$root/etc/kairos-release" <<'REL'
KAIROS_ID="kairos"
KAIROS_ID_LIKE="kairos-core-debian-12"
KAIROS_NAME="kairos-core-debian-12"
KAIROS_VERSION="v3.2.1"
KAIROS_ARCH="amd64"
KAIROS_TARGETARCH="amd64"
KAIROS_FLAVOR="debian"
KAIROS_FLAVOR_RELEASE="12"
KAIROS_FAMILY="debian"
KAIROS_MODEL="generic"
KAIROS_VARIANT="core"
KAIROS_BUG_REPORT_URL="https://github.com/kairos-io/kairos/issues"
KAIROS_HOME_URL="https://github.com/kairos-io/kairos"
KAIROS_RELEASE="v3.2.1"
KAIROS_FIPS="false"
KAIROS_TRUSTED_BOOT="false"
REL
cat > "$root/etc/os-release" <<'REL'
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
PRETTY_NAME="Kairos demo base (Debian 12, busybox)"
REL
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
echo "demo-base" > "$root/etc/hostname"
# Kairos layout: /boot/vmlinuz and /boot/initrd (symlinks to the versioned
# files), exactly one kernel under /lib/modules.
cp "$work/kernel/boot/vmlinuz-$kver" "$root/boot/vmlinuz-$kver"
(cd "$initramfs" && find . | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible) | gzip -n -9 > "$root/boot/initrd-$kver"
ln -s "vmlinuz-$kver" "$root/boot/vmlinuz"
ln -s "initrd-$kver" "$root/boot/initrd"
for m in $modules; do
  src=$(find "$work/kernel/lib/modules/$kver" -name "$m.ko")
  dst=$root/lib/modules/$kver/${src#"$work/kernel/lib/modules/$kver/"}
  mkdir -p "$(dirname "$dst")"
  cp "$src" "$dst"
  echo "${dst#"$root/lib/modules/"}" >> "$root/lib/modules/load-order"
done
install -m 0755 "$here/scripts/demo-base/init" "$root/sbin/init"

layout=$work/layout
mkdir -p "$layout/blobs/sha256"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
  -C "$root" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -6 -c "$work/layer.tar" > "$work/layer.tar.gz"
layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$layout/blobs/sha256/$layer"

blob() { # stdin -> blob; prints "digest size"
  cat > "$work/blob"
  local d s
  d=$(sha256sum "$work/blob" | cut -d' ' -f1)
  s=$(stat -c %s "$work/blob")
  mv "$work/blob" "$layout/blobs/sha256/$d"
  echo "$d $s"
}
read -r config config_size < <(printf '%s' \
  '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z",'\
'"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},'\
'"rootfs":{"type":"layers","diff_ids":["sha256:'"$diff_id"'"]},'\
'"history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/make-demo-base.sh"}]}' | blob)
read -r manifest manifest_size < <(printf '%s' \
  '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'\
'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config"'","size":'"$config_size"'},'\
'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"$layer"'","size":'"$layer_size"'}]}' | blob)
printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest"'","size":'"$manifest_size"',"annotations":{"org.opencontainers.image.ref.name":"latest"},"platform":{"architecture":"amd64","os":"linux"}}]}' > "$layout/index.json"

echo "$inputs" > "$layout/.inputs"
mkdir -p "$(dirname "$out")"
rm -rf "$out.partial" "$out.old"
mv "$layout" "$out.partial"
# An outdated OUT is moved aside first (rename(2) does not replace a folder
# that has files).
[ ! -e "$out" ] || mv -T "$out" "$out.old" 2>/dev/null || true
mv -T "$out.partial" "$out" 2>/dev/null || rm -rf "$out.partial"  # another run won the race
rm -rf "$out.old"
echo "demo base: $out (manifest sha256:$manifest)"
