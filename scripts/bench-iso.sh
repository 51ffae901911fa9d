#!/usr/bin/env bash
# ISO benchmark: `edgeforge iso --rootfs` against the bare tool pipeline it
# wraps (grub-mkimage, mtools, mksquashfs, xorriso, sha256sum with the same
# arguments, run by hand) on the same rootfs, in one run. Prints the ratio
# (target <= 1.05).
#   scripts/bench-iso.sh [SIZE_MIB] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
size_mib=${1:-1024}
rounds=${2:-2}
bench=$PWD/target/bench
bash scripts/bench-layer.sh "$size_mib" 0 >/dev/null   # makes the tree only
bash scripts/make-demo-base.sh >/dev/null
cargo build --release --locked -q
bin=$PWD/target/release/edgeforge
export SOURCE_DATE_EPOCH=1700000000

# The rootfs: the demo base plus the payload tree, hard-linked (no copy).
rootfs=$bench/iso-rootfs
rm -rf "$rootfs"
"$bin" -q unpack .cache/demo-base --out "$rootfs" >/dev/null
mkdir -p "$rootfs/opt"
cp -al "$bench/tree-$size_mib" "$rootfs/opt/payload"
ud=$bench/user-data.yaml
printf '#cloud-config\nstylus:\n  site:\n    name: bench\n' > "$ud"


edgeforge_iso() {
  rm -rf "$bench/ef"
  "$bin" -q iso images/demo-busybox.yaml --rootfs "$rootfs" --user-data "$ud" --out "$bench/ef"
}

bare_pipeline() {
  bare_iso_tree "$bench/bare" "$ud"
  bare_boot_images "$bench/bare"
  bare_squash_iso "$bench/bare" "$rootfs"
}

best_bare=999999; best_ef=999999
for i in $(seq "$rounds"); do
  sync
  b=$(secs bare_pipeline)
  e=$(secs edgeforge_iso)
  echo "round $i: bare tool pipeline ${b}s, edgeforge iso ${e}s"
  best_bare=$(min "$b" "$best_bare")
  best_ef=$(min "$e" "$best_ef")
done
ratio=$(ratio "$best_ef" "$best_bare")
echo "best: bare ${best_bare}s, edgeforge ${best_ef}s, ratio ${ratio} (target <= 1.05)"
echo "ISO sizes: bare $(stat -c %s "$bench/bare/out.iso"), edgeforge $(stat -c %s "$bench/ef/palette-edge-installer.iso") bytes"
