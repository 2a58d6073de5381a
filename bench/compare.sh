#!/usr/bin/env bash
# OpenPalm's identify against faiss IndexBinaryFlat on the same codes, in one run.
#
#   bench/compare.sh [GALLERY [WORKDIR]]        (defaults: 1000000, a fresh temporary folder)
#
# Runs `openpalm bench identify --gallery GALLERY --json --export-codes WORKDIR/codes`, then
# bench/faiss_flat.py on the exported codes (bit words only, then the whole stored code), and
# prints both JSON lines and a side-by-side table, with the load average before and after.
# Environment: OPENPALM (the binary, default target/release/openpalm, built with
# `cargo build --release -p openpalm`), PYTHON (an interpreter with bench/requirements.txt
# installed: `python3 -m venv V && V/bin/pip install -r bench/requirements.txt`),
# OPENPALM_ARGS (more bench arguments, e.g. "--save DIR"), FAISS_QUERIES (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
work=${2:-$(mktemp -d)}
openpalm=${OPENPALM:-target/release/openpalm}
python=${PYTHON:-python3}
queries=${FAISS_QUERIES:-50}
mkdir -p "$work"
echo "load before: $(cat /proc/loadavg)"
# shellcheck disable=SC2086
"$openpalm" bench identify --gallery "$n" --json --export-codes "$work/codes" ${OPENPALM_ARGS:-} \
    | tail -n 1 > "$work/openpalm.json"
for part in bits all; do
    "$python" bench/faiss_flat.py "$work/codes" --part "$part" --queries "$queries" \
        | tail -n 1 > "$work/faiss_$part.json"
done
echo "load after: $(cat /proc/loadavg)"
echo "openpalm: $(cat "$work/openpalm.json")"
echo "faiss bits: $(cat "$work/faiss_bits.json")"
echo "faiss all: $(cat "$work/faiss_all.json")"
"$python" - "$work" <<'PY'
import json, sys, os
w = sys.argv[1]
op = json.load(open(os.path.join(w, "openpalm.json")))
fb = json.load(open(os.path.join(w, "faiss_bits.json")))
fa = json.load(open(os.path.join(w, "faiss_all.json")))
print(f"gallery {op['gallery']}, p50 ms per single query (top-1 correct of {op['top1_correct']['of']} / of {fb['queries']})")
print(f"{'threads':>7} | {'OpenPalm identify k=5 (alignment)':>34} | {'faiss bits k=1':>14} | {'faiss bits k=5':>14} | {'faiss all k=5':>13}")
for t in (1, 2):
    o = op[f"threads_{t}"]["p50_ms"]
    oc = op["top1_correct"][f"threads_{t}"]
    b1 = fb[f"threads_{t}"]["k1"]["p50_ms"]
    b5 = fb[f"threads_{t}"]["k5"]["p50_ms"]
    a5 = fa[f"threads_{t}"]["k5"]["p50_ms"]
    bc = fb[f"threads_{t}"]["k5"]["top1_correct"]
    print(f"{t:>7} | {o:>26.2f} ({oc:>3}) | {b1:>14.2f} | {b5:>8.2f} ({bc:>3}) | {a5:>13.2f}")
PY
