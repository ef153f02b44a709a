#!/usr/bin/env bash
# Peak memory of a large model on the embedded trainer (`trainer train`, one process), against PyTorch's
# for the same model and steps in the same run: 5000-10000-10 (50.1M float64 parameters, P = 401 MB),
# batch 8, 3 steps, no checkpoint but the job's end, plain SGD and Adam; the trainer at 1 and 2 workers.
# Peak RSS (/usr/bin/time's maximum resident set size) of each process, median of the repeats, and
# its ratio to PyTorch's. PyTorch holds the parameters, their gradients and Adam's two moments (2 P
# for SGD, 4 P for Adam) besides its own ~0.3 GB; the trainer also holds the job's final model state
# and the memory storage's copy of it (docs/performance.md, "Memory of a large model in one process").
# Usage: bench/model-memory.sh [repeats]   (needs `dotnet build -c Release` and python3-torch)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
repeats="${1:-3}"
python=/usr/bin/python3
trainer=(dotnet "$repo/src/Trainer.Client/bin/Release/net10.0/trainer.dll" train --model 5000-10000-10 --batch 8 --steps 3 --lr 1e-5
  --checkpoint-every 0 --progress plain)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; 5000-10000-10, batch 8, 3 steps, $repeats repeats"
peak() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for optimizer in sgd adam; do
  torch=() one=() two=()
  for ((r = 0; r < repeats; r++)); do
    torch+=("$(peak "$python" "$repo/bench/references/torch_model_memory.py" "$optimizer" 3)")
    one+=("$(peak "${trainer[@]}" --optimizer "$optimizer" --workers 1)")
    two+=("$(peak "${trainer[@]}" --optimizer "$optimizer" --workers 2)")
  done
  t=$(median "${torch[@]}") a=$(median "${one[@]}") b=$(median "${two[@]}")
  printf '%-4s PyTorch %5d MB | trainer W=1 %5d MB (%.2fx) | trainer W=2 %5d MB (%.2fx)   [runs: %s | %s | %s]\n' \
    "$optimizer" $((t / 1024)) $((a / 1024)) "$(echo "$a / $t" | bc -l)" $((b / 1024)) "$(echo "$b / $t" | bc -l)" \
    "${torch[*]}" "${one[*]}" "${two[*]}"
done
