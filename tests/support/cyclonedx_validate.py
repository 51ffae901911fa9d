"""Validates CycloneDX 1.5 JSON documents against CycloneDX's own schema,
the copy cyclonedx-python-lib ships (with the spdx and jsf schemas it
references), offline. Usage: python cyclonedx_validate.py FILE...
Exit 1 naming the file and the first error."""
import json
import os
import sys

import cyclonedx
import jsonschema

res = os.path.join(os.path.dirname(cyclonedx.__file__), "schema", "_res")


def load(name):
    with open(os.path.join(res, name)) as f:
        return json.load(f)


bom = load("bom-1.5.SNAPSHOT.schema.json")
base = "http://cyclonedx.org/schema/"
store = {
    base + "bom-1.5.schema.json": bom,
    base + "spdx.schema.json": load("spdx.SNAPSHOT.schema.json"),
    base + "jsf-0.82.schema.json": load("jsf-0.82.SNAPSHOT.schema.json"),
}
resolver = jsonschema.RefResolver(base + "bom-1.5.schema.json", bom, store=store)
validator = jsonschema.Draft7Validator(
    bom, resolver=resolver, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
)
status = 0
for path in sys.argv[1:]:
    with open(path) as f:
        doc = json.load(f)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        print(f"{path}: {len(errors)} errors; first at /{'/'.join(map(str, e.path))}: {e.message}")
        status = 1
    else:
        print(f"{path}: valid CycloneDX 1.5")
sys.exit(status)
