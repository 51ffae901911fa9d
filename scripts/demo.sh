#!/usr/bin/env bash
# The main job end to end on the shipped demo definition (images/demo.yaml):
# installs host packages, makes the demo base image, builds edgeforge and the
# provider image, and prints where the artifacts and checksums are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-host-tools.sh
bash scripts/make-demo-base.sh
cargo build --release --locked
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
./target/release/edgeforge provider-image images/demo.yaml --out build
echo
echo "artifacts in $(pwd)/build:"
for f in build/*.oci.tar; do
  echo "  $f"
  echo "  $f.sha256: $(cut -d' ' -f1 "$f.sha256")"
done
echo "check them with: (cd build && sha256sum -c *.sha256)"
