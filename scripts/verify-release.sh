#!/usr/bin/env bash
# Checks an edgeforge release folder with standard tools only (gpg,
# sha256sum, python3 for the DSSE envelope), as a site or security team
# would without edgeforge:  scripts/verify-release.sh DIR PUBLIC_KEY.asc
#   1. SHA256SUMS.gpg and manifest.json.gpg: detached OpenPGP signatures;
#   2. every artifact against SHA256SUMS;
#   3. provenance.intoto.dsse.json: its payload is provenance.intoto.json and
#      its signature (base64 OpenPGP detached signature) is over the DSSE
#      pre-authentication encoding "DSSEv1 <len type> <type> <len body> <body>".
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 DIR PUBLIC_KEY" >&2; exit 2; }
dir=$1 key=$2
home=$(mktemp -d)
trap 'gpgconf --homedir "$home" --kill all 2>/dev/null || true; rm -rf "$home"' EXIT
chmod 700 "$home"
gpg --homedir "$home" --batch --quiet --import "$key"
for f in SHA256SUMS manifest.json; do
  gpg --homedir "$home" --batch --verify "$dir/$f.gpg" "$dir/$f"
done
(cd "$dir" && sha256sum --strict -c SHA256SUMS)
if [ -f "$dir/provenance.intoto.json" ]; then
  python3 - "$dir" "$home" <<'PY'
import base64, json, os, sys
d, home = sys.argv[1:]
env = json.load(open(os.path.join(d, "provenance.intoto.dsse.json")))
payload = base64.b64decode(env["payload"])
if payload != open(os.path.join(d, "provenance.intoto.json"), "rb").read():
    sys.exit("provenance.intoto.dsse.json: the payload is not provenance.intoto.json")
t = env["payloadType"].encode()
open(os.path.join(home, "pae"), "wb").write(b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload))
open(os.path.join(home, "sig"), "wb").write(base64.b64decode(env["signatures"][0]["sig"]))
PY
  gpg --homedir "$home" --batch --verify "$home/sig" "$home/pae"
  echo "provenance.intoto.dsse.json: OK"
fi
