#!/usr/bin/env bash
# Rebuild benchmark: `edgeforge build` of the demo definition from an empty
# cache against a rebuild after one overlay file changed, in the same run;
# then with a 256 MiB component (build, and provider-image alone), where the
# cached layer is what a rebuild saves. Prints the ratios (target >= 10x).
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
  sed -e "s|../overlays/rootfs|$bench/overlay|" -e "s|\.\./|$PWD/|g" images/demo.yaml > "$bench/def.yaml"
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
}
component="components:
  - source: $bench/component
    destination: /opt/payload
"
measure "demo definition" "" build --user-data images/user-data/demo.yaml
measure "demo + 256 MiB component" "$component" build --user-data images/user-data/demo.yaml
measure "demo + 256 MiB component" "$component" provider-image
rm -rf "$bench"
