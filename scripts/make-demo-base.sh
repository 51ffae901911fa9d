#!/usr/bin/env bash
# Makes the small Kairos-style demo base image as an OCI layout, from Debian's
# busybox-static, with no registry involved. Deterministic: the same packages
# give the same digests.
#   scripts/make-demo-base.sh [OUT_DIR]     (default: .cache/demo-base)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/.cache/demo-base}
if [ -f "$out/index.json" ]; then
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
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/kairos,dev,proc,sys,tmp,run,var/log,root,boot,system/oem,oem,usr/local}
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

mkdir -p "$(dirname "$out")"
rm -rf "$out.partial"
mv "$layout" "$out.partial"
mv -T "$out.partial" "$out" 2>/dev/null || rm -rf "$out.partial"  # another run won the race
echo "demo base: $out (manifest sha256:$manifest)"
