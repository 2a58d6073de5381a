#!/usr/bin/env bash
# Build the fuzz targets and run each for SECONDS (default 60), then print executions and
# crashes per target. Stable toolchain: no sanitizer (`-s none`; the targets are safe Rust
# with debug assertions and overflow checks on), RUSTC_BOOTSTRAP for any -Z flag cargo-fuzz
# passes. Needs `cargo install cargo-fuzz`. Inputs found are kept in fuzz/corpus/TARGET,
# crashes in fuzz/artifacts/TARGET (reproduce: cargo fuzz run -s none TARGET FILE).
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -uo pipefail
secs="${1:-60}"
shift || true
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }
[ -d seeds ] || python3 make_seeds.py
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build -s none >build.log 2>&1 || { tail -30 build.log; exit 1; }
mkdir -p logs
summary=()
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    case "$t" in
        decode) max_len=65536 ;;
        template) max_len=16384 ;;
        *) max_len=8192 ;;
    esac
    echo "== $t: ${secs}s" >&2
    cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -max_len="$max_len" -timeout=20 -rss_limit_mb=4096 \
        -print_final_stats=1 >"logs/$t.log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' | tail -1)
    [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "logs/$t.log" | tail -1 | tr -d '#')
    after=$(find "artifacts/$t" -type f | wc -l)
    crashes=$((after - before))
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        status=1
        grep -m5 -E "panicked|ERROR|SUMMARY|Test unit written" "logs/$t.log" >&2
    fi
    summary+=("$(printf '%-16s %6ss %12s execs %3s crashes (exit %s)' "$t" "$secs" "${execs:-?}" "$crashes" "$rc")")
done
printf '%s\n' "${summary[@]}"
exit $status
