#!/usr/bin/env bash
# The whole test suite on a fresh machine: host packages, lint gates, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-host-tools.sh
bash scripts/make-demo-base.sh
bash scripts/make-debian-base.sh   # cached outside the checkout after the first run
bash scripts/make-schema-venv.sh    # jsonschema + CycloneDX schemas in target/schema-venv
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
