#!/usr/bin/env bash
# Runs `ferrograd-bench` and bench/pytorch_reference.py alternately (A B A B ...) on the same
# machine, then prints and writes a markdown table of ferrograd / PyTorch ratios with the date,
# CPU model, versions and thread counts (bench/ratio_table.py).
#
#   bench/compare.sh [--install-torch] [--rounds N] [--threads 1,2] [--data-dir DIR]
#                    [--workloads gemm,mlp-sgd,mlp-adam,infer,epoch,cnn-lenet,cnn-cifar,epoch-lenet]
#                    [--keep-denormals] [--peers candle,burn] [--quick] [--out FILE]
#
# PyTorch is taken from $TORCH_PYTHON, else bench/.venv (created with --install-torch, which
# pip-installs torch and numpy there; set TORCH_INDEX_URL to use a CPU-only wheel index), else
# python3. The epoch workloads (one MNIST epoch from the IDX files: epoch, epoch-lenet) need
# --data-dir and run in a process of their own per system and mode, so their peak memory is
# their own. The CNN training steps run at batch 64 and 256 (cnn-lenet) and 128 (cnn-cifar).
# A workload this ferrograd-bench does not know yet is measured in PyTorch only, with a
# warning. --peers also runs the Rust peers of bench/peers (a project outside the workspace,
# built here on first use; the GEMM, MLP and CNN training-step workloads, not the epochs) in
# each round and adds a ferrograd / peer table. Not part of CI.
set -euo pipefail

cd "$(dirname "$0")/.."
rounds=3
threads=1,2
workloads=gemm,mlp-sgd,mlp-adam,infer,epoch,cnn-lenet,cnn-cifar,epoch-lenet
data_dir=""
install=0
quick=0
out=""
peers=""
denormals=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --install-torch) install=1 ;;
        --rounds) rounds="$2"; shift ;;
        --threads) threads="$2"; shift ;;
        --workloads) workloads="$2"; shift ;;
        --data-dir) data_dir="$2"; shift ;;
        --peers) peers="$2"; shift ;;
        --quick) quick=1 ;;
        --keep-denormals) denormals=(--keep-denormals) ;;
        --out) out="$2"; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "error: $1: unknown option (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "error: --rounds: expected a positive integer, got $rounds" >&2; exit 2; }

if [[ $install == 1 ]]; then
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch numpy
fi
python="${TORCH_PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x bench/.venv/bin/python ]]; then python=bench/.venv/bin/python; else python=python3; fi
fi
"$python" -c "import torch" 2>/dev/null || {
    echo "error: $python cannot import torch; run with --install-torch or set TORCH_PYTHON" >&2
    exit 2
}

has() { [[ ",$workloads," == *",$1,"* ]]; }
for w in ${workloads//,/ }; do
    case "$w" in
        gemm|mlp-sgd|mlp-adam|infer|epoch|cnn-lenet|cnn-cifar|epoch-lenet) ;;
        *) echo "error: --workloads: unknown workload $w" >&2; exit 2 ;;
    esac
done
if (has epoch || has epoch-lenet) && [[ -z "$data_dir" ]]; then
    echo "error: --data-dir: the epoch workloads need MNIST's IDX files (or drop epoch and epoch-lenet from --workloads)" >&2
    exit 2
fi

cargo build --release -p ferrograd-cli --bin ferrograd-bench --quiet
ferrograd_bench=target/release/ferrograd-bench
for p in ${peers//,/ }; do
    [[ $p == candle || $p == burn ]] || { echo "error: --peers: expected candle and/or burn, got $p" >&2; exit 2; }
done
if [[ -n "$peers" ]]; then
    cargo build --release --quiet --manifest-path bench/peers/Cargo.toml
    peer_bin=bench/peers/target/release/ferrograd-peers
fi

common=(--threads "$threads" ${denormals[@]+"${denormals[@]}"})
mlp_sizes=()
lenet_batch=64,256
if [[ $quick == 1 ]]; then
    common+=(--reps 3 --seconds 0.1)
    mlp_sizes=(--batch 1,32 --n 256,512)
    lenet_batch=64
fi
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
# The MLP and GEMM workloads, measured by one command per system and round.
steady=$(for w in gemm mlp-sgd mlp-adam infer; do if has "$w"; then echo "$w"; fi; done | paste -sd, -)

# ferrograd_rows WORKLOAD ARGS...: appends ferrograd-bench's rows of one workload. A workload
# it does not know (an older build) is reported once and skipped in later rounds; the PyTorch
# rows are still measured and listed without a ratio.
skipped=","
ferrograd_rows() {
    local w="$1"
    shift
    [[ $skipped == *",$w,"* ]] && return 0
    if "$ferrograd_bench" --json --workload "$w" "$@" >> "$results/rows.jsonl" 2> "$results/stderr"; then
        cat "$results/stderr" >&2
    elif grep -q "unknown workload" "$results/stderr"; then
        echo "warning: this ferrograd-bench has no $w workload: PyTorch rows only" >&2
        skipped+="$w,"
    else
        cat "$results/stderr" >&2
        return 1
    fi
}

for ((r = 1; r <= rounds; r++)); do
    echo "round $r/$rounds" >&2
    if [[ -n "$steady" ]]; then
        "$ferrograd_bench" --json --workload "$steady" "${common[@]}" ${mlp_sizes[@]+"${mlp_sizes[@]}"} >> "$results/rows.jsonl"
        "$python" bench/pytorch_reference.py --workload "$steady" "${common[@]}" ${mlp_sizes[@]+"${mlp_sizes[@]}"} >> "$results/rows.jsonl"
        for p in ${peers//,/ }; do
            "$peer_bin" --system "$p" --workload "$steady" "${common[@]}" ${mlp_sizes[@]+"${mlp_sizes[@]}"} >> "$results/rows.jsonl"
        done
    fi
    for w in cnn-lenet cnn-cifar; do
        has "$w" || continue
        batch=$([[ $w == cnn-lenet ]] && echo "$lenet_batch" || echo 128)
        ferrograd_rows "$w" --batch "$batch" "${common[@]}"
        "$python" bench/pytorch_reference.py --workload "$w" --batch "$batch" "${common[@]}" >> "$results/rows.jsonl"
        for p in ${peers//,/ }; do
            "$peer_bin" --system "$p" --workload "$w" --batch "$batch" "${common[@]}" >> "$results/rows.jsonl"
        done
    done
    for w in epoch epoch-lenet; do
        has "$w" || continue
        for t in ${threads//,/ }; do
            for mode in eager static; do
                ferrograd_rows "$w" --mode "$mode" --threads "$t" --data-dir "$data_dir" \
                    ${denormals[@]+"${denormals[@]}"}
            done
            "$python" bench/pytorch_reference.py --workload "$w" --threads "$t" \
                --data-dir "$data_dir" ${denormals[@]+"${denormals[@]}"} >> "$results/rows.jsonl"
        done
    done
done

versions="ferrograd $("$ferrograd_bench" --version | awk '{print $2}'), $(rustc --version | awk '{print $1, $2}'), PyTorch $("$python" -c 'import torch; print(torch.__version__)')"
if [[ -n "$peers" ]]; then
    versions+=", $(awk '/^name = "candle-core"$/ {getline; print "candle " $3} /^name = "burn"$/ {getline; print "burn " $3 " (flex backend)"}' bench/peers/Cargo.lock | tr -d '"' | paste -sd, - | sed 's/,/, /g')"
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || uname -m)
out="${out:-bench/results/compare-$(date +%Y-%m-%d).md}"
flush=$([[ ${#denormals[@]} -eq 0 ]] && echo "flushed to zero in every system" || echo "kept (IEEE default) in every system")
python3 bench/ratio_table.py "$results/rows.jsonl" --cpu "$cpu" --versions "$versions; subnormals $flush" \
    --rounds "$rounds" --out "$out"
cp "$results/rows.jsonl" "${out%.md}.jsonl.tmp" && mv "${out%.md}.jsonl.tmp" "${out%.md}.jsonl"
echo "wrote $out and ${out%.md}.jsonl" >&2
