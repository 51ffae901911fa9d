#!/usr/bin/env bash
# Layer writing benchmark: edgeforge's one-pass tar+gzip+sha256 (plus diff_id
# and the file written) against `tar -c | gzip -6 | sha256sum` on the same
# 1 GiB tree, in the same run. Prints the ratio (target <= 1.0).
#   scripts/bench-layer.sh [SIZE_MIB] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
size_mib=${1:-1024}
rounds=${2:-3}
tree=target/bench/tree-$size_mib
out=target/bench/layer.tar.gz

if [ ! -d "$tree" ]; then
  echo "making a ${size_mib} MiB tree of mixed files in $tree"
  python3 - "$tree" "$size_mib" <<'PY'
import os, random, sys
root, size = sys.argv[1], int(sys.argv[2]) << 20
rng = random.Random(42)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(5000)]
tmp = root + ".partial"
written, n = 0, 0
while written < size:
    kind = n % 3  # a third random, a third text, a third structured binary
    d = os.path.join(tmp, f"d{n % 97:02d}", f"s{n % 7}")
    os.makedirs(d, exist_ok=True)
    # mostly small files, some large ones, as a rootfs has
    length = rng.choice([1_000, 4_000, 16_000, 64_000, 256_000, 1_000_000, 8_000_000])
    length = min(length, size - written)
    if kind == 0:
        data = rng.randbytes(length)
    elif kind == 1:
        out = bytearray()
        while len(out) < length:
            out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
        data = bytes(out[:length])
    else:
        block = bytes(rng.randrange(256) if i % 4 == 0 else 0 for i in range(4096))
        data = (block * (length // 4096 + 1))[:length]
    with open(os.path.join(d, f"f{n}.bin"), "wb") as f:
        f.write(data)
    written += length
    n += 1
os.rename(tmp, root)
print(f"{n} files")
PY
fi
[ "$rounds" -gt 0 ] || exit 0
cargo build --release --locked -q
bin=target/release/edgeforge

best_base=999999; best_ef=999999
for i in $(seq "$rounds"); do
  sync
  b=$(secs bash -c "tar -C '$tree' -cf - . | gzip -6 | sha256sum")
  e=$(secs "$bin" -q layer "$tree" --out "$out")
  echo "round $i: tar|gzip -6|sha256sum ${b}s, edgeforge layer ${e}s"
  best_base=$(min "$b" "$best_base")
  best_ef=$(min "$e" "$best_ef")
done
ratio=$(ratio "$best_ef" "$best_base")
echo "best: baseline ${best_base}s, edgeforge ${best_ef}s, ratio ${ratio} (target <= 1.0)"
echo "sizes: edgeforge $(stat -c %s "$out") bytes; gzip -6 $(tar -C "$tree" -cf - . | gzip -6 | wc -c) bytes"
rm -f "$out"
