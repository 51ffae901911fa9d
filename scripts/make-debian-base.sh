#!/usr/bin/env bash
# Makes a real Kairos-style Debian base image as an OCI layout: a test fixture
# for boot checks of edgeforge ISOs with a real distribution (systemd, dracut
# dmsquash-live, setuid and file-capability binaries). Needs root and Debian's
# package registry (mmdebstrap; nothing else from the network).
#   layer 1: the mmdebstrap tarball as it is (minbase + systemd, Debian's
#            signed kernel, dracut with a live initramfs, sudo, ping, and
#            the signed boot chain a Secure Boot host needs: shim, GRUB for
#            CDs, systemd-boot and its UKI stub)
#   layer 2: the Kairos bits: /etc/kairos-release, /boot/vmlinuz and
#            /boot/initrd, replaced files, a whiteout, an opaque directory and
#            edgeforge-report.service, which prints one EDGEFORGE-BOOT line on
#            ttyS0 and POWERS THE MACHINE OFF (scripts/boot-test.sh waits for
#            it; a fixture, not an appliance).
# The layout is cached outside the checkout, keyed by this script, the files
# under scripts/debian-base/ and the suite; OUT becomes a symlink to it.
#   scripts/make-debian-base.sh [OUT]        (default: .cache/debian-base)
# Environment: EDGEFORGE_FIXTURE_CACHE (cache folder, default
# ${XDG_CACHE_HOME:-~/.cache}/edgeforge-fixtures), EDGEFORGE_DEBIAN_SUITE
# (default bookworm), EDGEFORGE_DEBIAN_MIRROR (an mmdebstrap MIRROR argument,
# e.g. a local mirror; default mmdebstrap's own: Debian's registry with -updates and -security),
# TMPDIR (mmdebstrap's chroot, about 650 MB).
set -euo pipefail
umask 022
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
helpers=$here/scripts/debian-base
suite=${EDGEFORGE_DEBIAN_SUITE:-bookworm}
out=${1:-$here/.cache/debian-base}
cache=${EDGEFORGE_FIXTURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeforge-fixtures}
# mtimes of both layers and the `created` fields: bookworm's release day.
epoch=1686355200
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

key=$(cd "$here/scripts" && {
  sha256sum make-debian-base.sh
  find debian-base -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  echo "suite $suite"
} | sha256sum | cut -c1-16)
entry=$cache/debian-base-$key

link_out() {
  mkdir -p "$(dirname "$out")"
  if [ -e "$out" ] && [ ! -L "$out" ]; then
    echo "make-debian-base: $out exists and is not a symlink; remove it first" >&2
    exit 2
  fi
  ln -sfn "$entry" "$out.link.$$"
  mv -Tf "$out.link.$$" "$out"  # rename(2): replaces a stale symlink atomically
}
if [ -f "$entry/index.json" ]; then
  link_out
  echo "debian base: $out -> $entry (cached)"
  exit 0
fi

for tool in mmdebstrap skopeo umoci flock gzip tar; do
  command -v "$tool" >/dev/null || { echo "make-debian-base: $tool missing; run scripts/install-host-tools.sh" >&2; exit 4; }
done
[ "$(id -u)" -eq 0 ] || { echo "make-debian-base: needs root (mmdebstrap --mode=root keeps owners, setuid bits and file capabilities)" >&2; exit 4; }

mkdir -p "$cache"
exec 9>"$entry.lock"
if ! flock -n 9; then
  echo "debian base: waiting for another build of $entry"
  flock 9
fi
if [ -f "$entry/index.json" ]; then  # built while we waited
  link_out
  echo "debian base: $out -> $entry (cached)"
  exit 0
fi
# Temp folders of runs that died (we hold the lock, none is in use).
for stale in "$entry".tmp.*; do
  [ ! -d "$stale" ] || rm -rf --one-file-system "$stale"
done
tmp=$(mktemp -d "$entry.tmp.XXXXXX")
# mmdebstrap's chroot goes under a folder of ours in TMPDIR: an interrupted
# mmdebstrap leaves it with /proc, /sys and /dev/pts mounted, for us to undo.
mmtmp=$(mktemp -d "${TMPDIR:-/tmp}/edgeforge-debian-base.XXXXXX")
cleanup() {
  set +e
  findmnt -rn -o TARGET | grep -F "$mmtmp/" | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$mmtmp" "$tmp"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$tmp/work
layout=$tmp/layout
mkdir -p "$work" "$layout/blobs/sha256"

mark=$EPOCHREALTIME
start=$mark
lap() { # lap WHAT: prints the time since the last lap
  local now=$EPOCHREALTIME
  awk -v what="$1" -v a="$mark" -v b="$now" 'BEGIN { printf "debian base: %s in %.1fs\n", what, b - a }'
  mark=$now
}
mib() { du -m "$1" | cut -f1; }
stamp() { # prefixes each line of stdin with the seconds since the last lap
  local line
  while IFS= read -r line; do
    awk -v a="$mark" -v b="$EPOCHREALTIME" -v l="$line" 'BEGIN { printf "  mmdebstrap %5.1fs: %s\n", b - a, l }'
  done
}

echo "debian base: building $suite into $entry (about a minute or more: mmdebstrap output follows on stderr)"
packages=systemd,systemd-sysv,linux-image-amd64,dracut,dracut-live,zstd,udev,kmod,e2fsprogs,util-linux,mount,sudo,iputils-ping,shim-signed,grub-efi-amd64-signed,shim-helpers-amd64-signed,systemd-boot-efi
mirror=()
[ -z "${EDGEFORGE_DEBIAN_MIRROR:-}" ] || mirror=("$EDGEFORGE_DEBIAN_MIRROR")
DEBIAN_BASE_WORK=$work SOURCE_DATE_EPOCH=$epoch TMPDIR=$mmtmp mmdebstrap \
  --mode=root --variant=minbase --format=tar \
  --include="$packages" \
  --aptopt='APT::Install-Recommends "false"' --aptopt='Acquire::Languages "none"' \
  --dpkgopt=force-unsafe-io \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --essential-hook="sh '$helpers/essential-hook.sh' \"\$1\"" \
  --customize-hook="bash '$helpers/customize-hook.sh' \"\$1\"" \
  "$suite" "$work/rootfs.tar" "${mirror[@]}" 2>&1 | stamp >&2
if [ ! -f "$work/facts" ] || [ ! -s "$work/rootfs.tar" ]; then
  echo "make-debian-base: mmdebstrap failed" >&2
  exit 1
fi
fact() { sed -n "s/^$1=//p" "$work/facts"; }
kver=$(fact kver) os_id=$(fact os_id) os_version=$(fact os_version)
lap "mmdebstrap ($os_id $os_version, kernel $kver; tar $(mib "$work/rootfs.tar") MB)"

# Layer 2: a plain deterministic tar; whiteouts are empty .wh.* files.
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=gnu \
  -C "$work/layer2" -cf "$work/layer2.tar" .
lap "tar of layer 2 ($(tar -tf "$work/layer2.tar" | wc -l) entries)"

diff_ids=() digests=() sizes=()
for t in rootfs layer2; do
  gzip -n -6 -c "$work/$t.tar" > "$work/$t.tar.gz"
  lap "gzip -6 of $t.tar ($(mib "$work/$t.tar") MB -> $(mib "$work/$t.tar.gz") MB)"
  diff_ids+=("$(sha256sum "$work/$t.tar" | cut -d' ' -f1)")
  d=$(sha256sum "$work/$t.tar.gz" | cut -d' ' -f1)
  digests+=("$d")
  sizes+=("$(stat -c %s "$work/$t.tar.gz")")
  mv "$work/$t.tar.gz" "$layout/blobs/sha256/$d"
  rm "$work/$t.tar"
  lap "sha256 of $t.tar and $t.tar.gz"
done

blob() { # stdin -> blob; prints "digest size"
  cat > "$work/blob"
  local d s
  d=$(sha256sum "$work/blob" | cut -d' ' -f1)
  s=$(stat -c %s "$work/blob")
  mv "$work/blob" "$layout/blobs/sha256/$d"
  echo "$d $s"
}
read -r config config_size < <(printf '%s' \
  '{"architecture":"amd64","os":"linux","created":"'"$created"'",'\
'"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/bash"]},'\
'"rootfs":{"type":"layers","diff_ids":["sha256:'"${diff_ids[0]}"'","sha256:'"${diff_ids[1]}"'"]},'\
'"history":[{"created":"'"$created"'","created_by":"mmdebstrap --variant=minbase '"$suite"' (scripts/make-debian-base.sh)"},'\
'{"created":"'"$created"'","created_by":"Kairos layout, edgeforge-report.service (scripts/make-debian-base.sh)"}]}' | blob)
read -r manifest manifest_size < <(printf '%s' \
  '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'\
'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config"'","size":'"$config_size"'},'\
'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"${digests[0]}"'","size":'"${sizes[0]}"'},'\
'{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"${digests[1]}"'","size":'"${sizes[1]}"'}]}' | blob)
printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest"'","size":'"$manifest_size"',"annotations":{"org.opencontainers.image.ref.name":"latest"},"platform":{"architecture":"amd64","os":"linux"}}]}' > "$layout/index.json"

# Check the layout with other tools: skopeo reads it; umoci applies both
# layers (whiteouts, opaque directory) with setuid bits and xattrs.
skopeo inspect "oci:$layout:latest" >/dev/null || { echo "make-debian-base: skopeo cannot read the layout" >&2; exit 1; }
umoci unpack --image "$layout:latest" "$work/bundle" >/dev/null || { echo "make-debian-base: umoci cannot unpack the layout" >&2; exit 1; }
lap "skopeo inspect and umoci unpack"
r=$work/bundle/rootfs
problems=()
[ "$(stat -c %a "$r/usr/bin/sudo")" = 4755 ] || problems+=("/usr/bin/sudo is $(stat -c %a "$r/usr/bin/sudo"), not 4755")
if command -v getcap >/dev/null; then
  getcap "$r/usr/bin/ping" | grep -q cap_net_raw || problems+=("/usr/bin/ping lost its security.capability (cap_net_raw)")
else
  echo "debian base: getcap missing (libcap2-bin), not checking /usr/bin/ping's file capability"
fi
[ ! -e "$r/etc/cron.daily/apt-compat" ] || problems+=("the whiteout of /etc/cron.daily/apt-compat was not applied")
[ ! -e "$r/etc/update-motd.d/10-uname" ] || problems+=("/etc/update-motd.d is not opaque (10-uname is still there)")
[ -x "$r/etc/update-motd.d/10-edgeforge" ] || problems+=("/etc/update-motd.d/10-edgeforge is missing")
[ "$(cat "$r/etc/hostname")" = edgeforge-debian ] || problems+=("/etc/hostname was not replaced")
[ -f "$r/boot/vmlinuz" ] || problems+=("/boot/vmlinuz does not resolve")
[ -f "$r/boot/initrd" ] || problems+=("/boot/initrd does not resolve")
[ -f "$r/etc/systemd/system/multi-user.target.wants/edgeforge-report.service" ] || problems+=("edgeforge-report.service is not enabled")
leftovers=$(find "$r" -name '.wh.*' | head -n3)
[ -z "$leftovers" ] || problems+=("whiteout files left in the tree: $leftovers")
rm -rf --one-file-system "$work/bundle"
if [ ${#problems[@]} -gt 0 ]; then
  printf 'make-debian-base: %s\n' "${problems[@]}" >&2
  exit 1
fi
lap "checks of the unpacked tree"

rm -rf "$work"
mv -T "$layout" "$entry"
link_out
awk -v a="$start" -v b="$EPOCHREALTIME" -v m="$(mib "$entry")" -v out="$out" -v digest="$manifest" \
  'BEGIN { printf "debian base: %s (manifest sha256:%s, %d MB) in %.0fs\n", out, digest, m, b - a }'
