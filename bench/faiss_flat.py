#!/usr/bin/env python3
"""Time faiss IndexBinaryFlat single-query search on the codes OpenPalm's bench searched.

Reads `gallery.codes` and `probes.codes` written by
`openpalm bench identify --export-codes DIR` (format: crates/cli/src/cmd/bench.rs module
docs; a 32-byte header `OPCODES1`, records u64, code_bytes u32, bits_bytes u32, grid u16,
planes u16, then per record an id u64 and the code's bytes, bit words then mask words).

faiss compares plain Hamming distance, without the translation and pose search OpenPalm's
identify does, and without the validity mask: `--part bits` indexes the code's bit words
only (what a plain binary-code search would hold), `--part all` the whole stored code (bits
and mask: the same bytes OpenPalm's gallery holds). Each probe is searched alone
(`index.search(q[i:i+1], k)`), like one gate query, for every k and thread count asked;
prints one JSON object as its last line.

For the comparison only: Python is never part of the product.
"""

import argparse
import json
import os
import struct
import time

import faiss
import numpy as np


def read_codes(path):
    with open(path, "rb") as f:
        head = f.read(32)
        if len(head) != 32 or head[:8] != b"OPCODES1":
            raise SystemExit(f"{path}: not an OPCODES1 file")
        records, code_bytes, bits_bytes, grid, planes = struct.unpack_from("<QIIHH", head, 8)
        dtype = np.dtype([("id", "<u8"), ("code", "u1", (code_bytes,))])
        data = np.fromfile(f, dtype=dtype, count=records)
    if len(data) != records:
        raise SystemExit(f"{path}: {len(data)} records, header says {records}")
    return data, code_bytes, bits_bytes, (grid, planes)


def percentile(sorted_ms, q):
    return sorted_ms[round((len(sorted_ms) - 1) * q)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="folder written by --export-codes")
    ap.add_argument("--part", choices=["bits", "all"], default="bits")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--queries", type=int, default=50, help="probes timed per (threads, k)")
    args = ap.parse_args()

    gallery, code_bytes, bits_bytes, geometry = read_codes(os.path.join(args.dir, "gallery.codes"))
    probes, p_bytes, _, p_geometry = read_codes(os.path.join(args.dir, "probes.codes"))
    if (p_bytes, p_geometry) != (code_bytes, geometry):
        raise SystemExit("gallery and probes differ in geometry")
    width = bits_bytes if args.part == "bits" else code_bytes
    xb = np.ascontiguousarray(gallery["code"][:, :width])
    ids = gallery["id"].astype(np.int64)
    xq = np.ascontiguousarray(probes["code"][: args.queries, :width])
    truth = probes["id"][: args.queries].astype(np.int64)
    del gallery

    t = time.perf_counter()
    index = faiss.IndexBinaryFlat(8 * width)
    index.add(xb)
    add_s = time.perf_counter() - t
    del xb

    out = {
        "engine": "faiss IndexBinaryFlat",
        "faiss_version": faiss.__version__,
        "gallery": int(index.ntotal),
        "part": args.part,
        "code_bytes": width,
        "queries": len(xq),
        "add_s": add_s,
        "loadavg": list(os.getloadavg()),
    }
    for threads in args.threads:
        faiss.omp_set_num_threads(threads)
        index.search(xq[:1], 1)  # warm-up
        per_k = {}
        for k in args.k:
            ms = []
            correct = 0
            for i in range(len(xq)):
                t = time.perf_counter()
                _, labels = index.search(xq[i : i + 1], k)
                ms.append((time.perf_counter() - t) * 1e3)
                if labels[0, 0] >= 0 and ids[labels[0, 0]] == truth[i]:
                    correct += 1
            ms.sort()
            per_k[f"k{k}"] = {
                "p50_ms": percentile(ms, 0.5),
                "p99_ms": percentile(ms, 0.99),
                "qps": len(ms) / (sum(ms) / 1e3),
                "top1_correct": correct,
            }
        out[f"threads_{threads}"] = per_k
    print(json.dumps(out))


if __name__ == "__main__":
    main()
