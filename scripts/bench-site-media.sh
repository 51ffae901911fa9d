#!/usr/bin/env bash
# Site user-data media benchmark: SITES sites (default 1000) from one sites
# file through `edgeforge site-media --sites`, against one
# `xorriso -as mkisofs -volid cidata -joliet -rock user-data meta-data` run
# per site (the documented manual command), in the same run. The xorriso side
# gets each site's user-data and meta-data ready-made (untimed); edgeforge's
# time includes rendering, checking and committing with checksums.
# Prints the time per site and the ratio (target <= 0.2).
#   scripts/bench-site-media.sh [SITES]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
sites=${1:-1000}
bench=$PWD/target/bench/site-media
cargo build --release --locked -q
bin=$PWD/target/release/edgeforge
export SOURCE_DATE_EPOCH=1700000000
rm -rf "$bench" && mkdir -p "$bench"

{
  echo "sites:"
  for i in $(seq "$sites"); do
    echo "  - {name: site-$i, palette_endpoint: api.spectrocloud.com, token_env: BENCH_TOKEN, tags: {store: \"$i\"}, network: {nameserver: 10.0.$((i % 250)).53}}"
  done
} > "$bench/sites.yaml"
export BENCH_TOKEN=bench-token-0123456789abcdef

ours=$(secs "$bin" site-media --sites "$bench/sites.yaml" --out-dir "$bench/media")
made=$(ls "$bench/media" | grep -c -- '-user-data.iso$')
[ "$made" -eq "$sites" ] || { echo "bench-site-media: edgeforge made $made media, not $sites" >&2; exit 1; }

# The same documents, ready for the manual command (not timed).
for i in $(seq "$sites"); do
  d=$bench/manual/site-$i
  mkdir -p "$d"
  xorriso -osirrox on -indev "$bench/media/site-$i-user-data.iso" -extract /user-data "$d/user-data" \
    -extract /meta-data "$d/meta-data" >/dev/null 2>&1
done
manual_all() {
  for i in $(seq "$sites"); do
    (cd "$bench/manual/site-$i" && xorriso -as mkisofs -output site.iso -volid cidata -joliet -rock user-data meta-data)
  done
}
theirs=$(secs manual_all)

per() { awk -v a="$1" -v n="$sites" 'BEGIN { printf "%.2f", a * 1000 / n }'; }
echo "$sites sites: edgeforge site-media --sites ${ours}s ($(per "$ours") ms per site)"
echo "$sites sites: xorriso -as mkisofs per site ${theirs}s ($(per "$theirs") ms per site)"
echo "ratio: edgeforge / xorriso = $(ratio "$ours" "$theirs")x (target <= 0.2)"
