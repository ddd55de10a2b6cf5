#!/usr/bin/env bash
# Runs one coverage-guided fuzz target (libFuzzer, through the `libfuzzer-sys` crate) for a
# given time, on stable Rust:
#
#   scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags...]
#
# Targets: idx, cifar, digits_csv, image, model_folder, tensor (see fuzz/fuzz_targets/). The
# fuzz crate in fuzz/ is a workspace of its own, so neither the main build nor CI compiles it.
# It is built with the SanitizerCoverage instrumentation that `cargo fuzz` adds (the flags
# below), without `-Zsanitizer=address`, which needs a nightly compiler: the code under test is
# safe Rust, so panics, aborts, overflows (checked in this profile), timeouts and memory
# exhaustion are what the fuzzer reports. `cargo fuzz run TARGET` works as well where
# cargo-fuzz and a nightly toolchain are installed.
#
# The run starts from the checked-in seeds in fuzz/seeds/TARGET and keeps what it finds in
# fuzz/corpus/TARGET (ignored by git). A crash is written to fuzz/artifacts/TARGET/; fix it in
# the library, add the input as a regression test in the normal test suite, and replay it with
# `scripts/fuzz.sh TARGET 0 fuzz/artifacts/TARGET/crash-...`.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer flags or inputs...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
if [ ! -f "$fuzz/fuzz_targets/$target.rs" ]; then
    echo "no fuzz target $target; one of: $(cd "$fuzz/fuzz_targets" && ls | sed 's/\.rs$//' | tr '\n' ' ')" >&2
    exit 2
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$fuzz/target}"
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# --target keeps the instrumentation off build scripts and procedural macros.
(cd "$fuzz" && cargo build --release --target "$triple" --bin "$target")
bin="$CARGO_TARGET_DIR/$triple/release/$target"

corpus="$fuzz/corpus/$target"
artifacts="$fuzz/artifacts/$target"
mkdir -p "$corpus" "$artifacts"
# The targets that read files write each input into one scratch folder per run, in memory
# where the system has a tmpfs.
scratch=$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/ferrograd-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"
if [ $# -gt 0 ] && [ -f "$1" ]; then
    # Replaying given inputs.
    "$bin" "$@"
    exit
fi
"$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "$@" "$corpus" "$fuzz/seeds/$target"
