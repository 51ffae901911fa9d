#!/usr/bin/env bash
# Real-base benchmark, in one run on the Debian base (scripts/make-debian-base.sh):
#  - edgeforge's clean `build` (provider image + ISO, empty cache) against the
#    bare tools doing the ISO's job by hand on the same provider image
#    (tar -x of the oci-archive, `umoci unpack`, grub-mkimage + mtools,
#    `mksquashfs` with edgeforge's options, `xorriso`, `sha256sum`);
#    target: ratio <= 0.7;
#  - a rebuild after one overlay file changed against its floor: the
#    mksquashfs + xorriso + sha256sum that a changed root filesystem cannot
#    avoid (the tree already unpacked); target: ratio <= 1.2. Also printed:
#    the durable floor, which adds writing, hashing and flushing the new
#    provider image and flushing the ISO (a rebuild that keeps its outputs
#    durable and checksummed cannot do less).
#   scripts/bench-real.sh [ROUNDS]          (best of ROUNDS, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
rounds=${1:-2}
bench=$PWD/target/bench/real
bash scripts/make-debian-base.sh >/dev/null
cargo build --release --locked -q
bin=$PWD/target/release/edgeforge
export SOURCE_DATE_EPOCH=1700000000
rm -rf "$bench" && mkdir -p "$bench/overlay"
cp -a overlays/rootfs/. "$bench/overlay/"
sed -e "s|../overlays/rootfs|$bench/overlay|" -e "s|\.\./|$PWD/|g" images/demo.yaml > "$bench/def.yaml"
ud=$PWD/images/user-data/demo.yaml
iso=palette-edge-installer-debian.iso

edgeforge_build() {
  "$bin" -q --cache-dir "$bench/cache" build "$bench/def.yaml" --user-data "$ud" --out "$bench/out"
}

clean_build() {
  rm -rf "$bench/cache" "$bench/out"
  edgeforge_build
}

# What a changed root filesystem cannot avoid: squashfs, ISO, hash.
squash_iso_hash() { bare_squash_iso "$bench/bare" "$bench/bare/bundle/rootfs"; }

# What a durable rebuild cannot avoid besides: the new provider image
# (another overlay layer means another archive) written and hashed, and
# both outputs flushed to disk before they are renamed into place.
durable_floor() {
  local w=$bench/bare archive
  squash_iso_hash
  archive=$(ls "$bench"/out/*.oci.tar | head -n1)
  cp --reflink=never "$archive" "$w/copy.oci.tar"
  sha256sum "$w/copy.oci.tar"
  sync "$w/out.iso" "$w/copy.oci.tar"
}

bare_pipeline() {
  local w=$bench/bare archive
  archive=$(ls "$bench"/out/*.oci.tar | head -n1)
  rm -rf "$w/layout" "$w/bundle" && mkdir -p "$w/layout"
  tar -xf "$archive" -C "$w/layout"
  umoci unpack --image "$w/layout:$(tag_of "$w/layout")" "$w/bundle"
  bare_boot_images "$w"
  squash_iso_hash
}

tag_of() {
  sed -n 's/.*"org.opencontainers.image.ref.name":"\([^"]*\)".*/\1/p' "$1/index.json"
}

clean_build  # warm the page cache and make the provider image the bare pipeline unpacks
bare_iso_tree "$bench/bare" "$ud"
best_bare=999999 best_clean=999999 best_re=999999 best_floor=999999 best_durable=999999
for i in $(seq "$rounds"); do
  sync
  b=$(secs bare_pipeline)
  c=$(secs clean_build)
  echo "change $i" > "$bench/overlay/etc/motd"
  r=$(secs edgeforge_build)
  f=$(secs squash_iso_hash)
  d=$(secs durable_floor)
  echo "round $i: bare ${b}s, edgeforge clean ${c}s, rebuild after one overlay file ${r}s, floor ${f}s, durable floor ${d}s"
  best_bare=$(min "$b" "$best_bare"); best_clean=$(min "$c" "$best_clean")
  best_re=$(min "$r" "$best_re"); best_floor=$(min "$f" "$best_floor"); best_durable=$(min "$d" "$best_durable")
done
echo "clean build: edgeforge ${best_clean}s / bare tools ${best_bare}s = $(ratio "$best_clean" "$best_bare") (target <= 0.7)"
echo "rebuild: edgeforge ${best_re}s / floor ${best_floor}s = $(ratio "$best_re" "$best_floor") (target <= 1.2)"
echo "rebuild: edgeforge ${best_re}s / durable floor (+ provider image copy, hash, flush) ${best_durable}s = $(ratio "$best_re" "$best_durable")"
echo "sizes: ISO edgeforge $(stat -c %s "$bench/out/$iso"), bare $(stat -c %s "$bench/bare/out.iso") bytes"
