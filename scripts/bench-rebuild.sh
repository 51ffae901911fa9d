#!/usr/bin/env bash
# Rebuild benchmark: `edgeforge build` of the demo definition from an empty
# cache against a rebuild after one overlay file changed, in the same run;
# then with a 256 MiB component (build, and provider-image alone), where the
# cached layer is what a rebuild saves. Prints the ratios (target >= 10x), and
# the floor: copying the changed outputs, hashing them (openssl, SHA-NI) and
# flushing them to disk, which any rebuild must do at least, with the speedup
# that floor allows.
#   scripts/bench-rebuild.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
rounds=${1:-3}
bench=$PWD/target/bench/rebuild
bash scripts/make-demo-base.sh >/dev/null
cargo build --release --locked -q
bin=$PWD/target/release/edgeforge
export SOURCE_DATE_EPOCH=1700000000
rm -rf "$bench" && mkdir -p "$bench/overlay/etc" "$bench/component"
cp -a overlays/rootfs/. "$bench/overlay/"
head -c 256M /dev/urandom > "$bench/component/payload.bin"

measure() { # $1: label, $2: extra definition YAML, $3...: the edgeforge command after the definition
  local label=$1 extra=$2; shift 2
  sed -e "s|../overlays/rootfs|$bench/overlay|" -e "s|\.\./|$PWD/|g" images/demo-busybox.yaml > "$bench/def.yaml"
  printf '%s' "$extra" >> "$bench/def.yaml"
  local best_clean=999999 best_re=999999 i c r
  for i in $(seq "$rounds"); do
    rm -rf "$bench/cache" "$bench/out"
    c=$(secs "$bin" --cache-dir "$bench/cache" "$1" "$bench/def.yaml" "${@:2}" --out "$bench/out")
    echo "changed $i" > "$bench/overlay/etc/motd"
    r=$(secs "$bin" --cache-dir "$bench/cache" "$1" "$bench/def.yaml" "${@:2}" --out "$bench/out")
    best_clean=$(min "$c" "$best_clean"); best_re=$(min "$r" "$best_re")
  done
  echo "$label ($1): clean ${best_clean}s, rebuild after one overlay file ${best_re}s, speedup $(ratio "$best_clean" "$best_re")x (target >= 10x)"
  local best_floor=999999 f
  for i in $(seq "$rounds"); do
    f=$(secs copy_outputs)
    best_floor=$(min "$f" "$best_floor")
  done
  echo "  floor: copy + sha256 + flush of the outputs ${best_floor}s, at most $(ratio "$best_clean" "$best_floor")x"
}
copy_outputs() {
  local a
  rm -rf "$bench/copy" && mkdir -p "$bench/copy"
  for a in "$bench"/out/*.iso "$bench"/out/*.oci.tar; do
    cp --reflink=never "$a" "$bench/copy/"
    if command -v openssl >/dev/null; then openssl dgst -sha256 "$bench/copy/$(basename "$a")"; else sha256sum "$bench/copy/$(basename "$a")"; fi
    sync "$bench/copy/$(basename "$a")"
  done
}
component="components:
  - source: $bench/component
    destination: /opt/payload
"
measure "demo definition" "" build --user-data images/user-data/demo.yaml
measure "demo + 256 MiB component" "$component" build --user-data images/user-data/demo.yaml
measure "demo + 256 MiB component" "$component" provider-image
rm -rf "$bench"
