#!/usr/bin/env bash
# Per-site embedding benchmark: a golden ISO of over 1 GiB; times a full
# `edgeforge iso` rebuild, `edgeforge iso embed` for one site, and one
# `--sites` run for N sites (default 50), in the same run. Prints the ratios
# (targets: one site < 2 s, >= 50x faster than a rebuild).
#   scripts/bench-embed.sh [SITES]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
sites=${1:-50}
bench=$PWD/target/bench/embed
bash scripts/make-demo-base.sh >/dev/null
cargo build --release --locked -q
bin=$PWD/target/release/edgeforge
export SOURCE_DATE_EPOCH=1700000000
rm -rf "$bench" && mkdir -p "$bench"

rootfs=$bench/rootfs
"$bin" -q unpack .cache/demo-base --out "$rootfs" >/dev/null
mkdir -p "$rootfs/opt/payload"
head -c 1100M /dev/urandom > "$rootfs/opt/payload/incompressible.bin"   # keeps the ISO over 1 GiB


rebuild=$(secs "$bin" iso images/demo-busybox.yaml --golden --rootfs "$rootfs" --out "$bench/golden")
golden=$bench/golden/palette-edge-installer.iso
size=$(stat -c %s "$golden")
echo "golden ISO: $size bytes; full rebuild (edgeforge iso --golden): ${rebuild}s"

need=$(( size * (sites + 2) / 1024 / 1024 ))
free=$(df -m --output=avail "$bench" | tail -1)
if [ "$free" -lt $(( need + 2048 )) ]; then
  echo "bench-embed: needs about ${need} MiB free for $sites sites, $free MiB available; run with fewer sites" >&2
  exit 1
fi

one=$(secs "$bin" iso embed "$golden" --site-value name=one --site-value palette_endpoint=api.spectrocloud.com -o "$bench/one.iso")
echo "one site: ${one}s"
rm -f "$bench/one.iso"

{
  echo "sites:"
  for i in $(seq "$sites"); do echo "  - {name: site-$i, palette_endpoint: api.spectrocloud.com, token_env: BENCH_TOKEN}"; done
} > "$bench/sites.yaml"
many=$(BENCH_TOKEN=bench-token secs "$bin" iso embed "$golden" --sites "$bench/sites.yaml" --out-dir "$bench/sites")
echo "$sites sites: ${many}s ($(awk -v a="$many" -v n="$sites" 'BEGIN { printf "%.2f", a / n }')s per site)"
echo "ratios: rebuild / one site = $(ratio "$rebuild" "$one")x (target >= 50x); one site ${one}s (target < 2s)"
cp_time=$(secs cp --reflink=never "$golden" "$bench/plain-copy.iso")
echo "reference: plain cp of the golden ISO ${cp_time}s"
rm -rf "$bench/sites" "$bench/plain-copy.iso"
