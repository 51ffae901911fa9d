#!/usr/bin/env bash
# The JSON-schema validator the release tests use: a venv under target/ with
# jsonschema and cyclonedx-python-lib (which ships CycloneDX's own
# bom-1.5.schema.json and the spdx/jsf schemas it references).
# Idempotent: an existing venv with both is kept. Prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-target/schema-venv}"
py="$venv/bin/python"
if [ -x "$py" ] && "$py" -c 'import jsonschema, cyclonedx' 2>/dev/null; then
  echo "$py"
  exit 0
fi
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv" >&2
"$py" -m pip install -q --disable-pip-version-check 'jsonschema>=4,<5' 'cyclonedx-python-lib>=7,<9' >&2
echo "$py"
