#!/usr/bin/env bash
# The main job end to end on the shipped demo definition (images/demo.yaml):
# installs host packages, makes the Debian base image from Debian's packages
# (a few minutes the first time, then cached outside the checkout), builds
# edgeforge, then the provider image and the installer ISO with the demo
# user-data embedded, and prints where the artifacts and checksums are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-host-tools.sh
bash scripts/make-debian-base.sh
cargo build --release --locked
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
./target/release/edgeforge build images/demo.yaml --user-data images/user-data/demo.yaml --out build
echo
echo "artifacts in $(pwd)/build:"
while read -r sum name; do
  echo "  build/$name  sha256:$sum"
done < build/SHA256SUMS
echo "checksums: $(pwd)/build/SHA256SUMS and build/*.sha256 (check: cd build && sha256sum -c SHA256SUMS)"
echo "boot it: BOOT_TEST_MEMORY=2048 scripts/boot-test.sh build/palette-edge-installer-debian.iso $(sha256sum images/user-data/demo.yaml | cut -d' ' -f1) bios uefi usb"
