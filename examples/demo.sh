#!/usr/bin/env bash
# The main job on the bundled example: build the network of CNTK's MEL documentation from NDL,
# edit it with the documentation's own MEL script (insert a fourth hidden layer, add mean/variance
# normalisation), check it, look at it, convert it, clone part of it with BrainScript, evaluate.
# Usage: bash examples/demo.sh [path/to/netsurgeon]   (make demo passes .venv/bin/netsurgeon)
set -euo pipefail
NS=${1:-netsurgeon}
cd "$(dirname "$0")/.."
OUT=out/demo
rm -rf "$OUT" && mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. Build the 784-256-256-256-10 network of the MEL documentation from NDL (standard macros RBFF/SMBFF)"
run "$NS" build examples/seed.ndl -o "$OUT/seed.dnn"
run "$NS" validate "$OUT/seed.dnn"
run "$NS" summary "$OUT/seed.dnn"   # before the edit; step 3 shows it after

step "2. Run the documentation's MEL script verbatim: Copy(L3.*, L4.*), rewire L3.RL -> L4 -> CE, add MeanVarNorm"
run "$NS" edit examples/seed.mel --set inModel="$OUT/seed.dnn" --set dumpFile="$OUT/seed.dump" \
    --set outModel="$OUT/seed4.dnn"
run "$NS" validate "$OUT/seed4.dnn"

step "3. Look at the new layer and the rewired inputs (CNTK's Dump format), and at what the edit changed"
run "$NS" dump "$OUT/seed4.dnn" --node 'L4.*' --node 'CE.BFF.FF.T' --node 'L1.BFF.FF.T' --node inputVal
run "$NS" summary "$OUT/seed4.dnn"
run "$NS" diff "$OUT/seed.dnn" "$OUT/seed4.dnn" || true  # exit 1: the models differ
# a picture of the edited network (Graphviz dot, else graphviz-pure; with neither: seed4.dot)
run "$NS" plot "$OUT/seed4.dnn" -o "$OUT/seed4.svg" --fallback-dot

step "4. Convert the CNTK file to the native format (safetensors + JSON graph, memory-mapped) and to CNTK 2.x (.model)"
run "$NS" convert "$OUT/seed4.dnn" "$OUT/seed4.nsm"
run "$NS" validate "$OUT/seed4.nsm"
run "$NS" convert "$OUT/seed.dnn" "$OUT/seed.model"
run "$NS" extract "$OUT/seed.model" --inputs features --outputs L1.RL -o "$OUT/layer1.nsm"

step "5. BrainScript: load a model and clone part of it with CloneFunction (examples/clone_basic.bs)"
if [ -f ../shared/cntk/models/MC.dnn ]; then
  run "$NS" bs examples/clone_basic.bs -o "$OUT/clone_basic.nsm"
  run "$NS" validate "$OUT/clone_basic.nsm"
else
  echo "(skipped: ../shared/cntk is not beside this checkout)"
fi

step "6. Evaluate a real CNTK model on its test set (MC.dnn, HelloWorld 3-class regression), compare backends"
if [ -f ../shared/cntk/models/MC.dnn ]; then
  run "$NS" eval ../shared/cntk/models/MC.dnn ../shared/cntk/data/Test-3Classes_cntk_text.txt
  # the same data through PyTorch and through onnxruntime (netsurgeon's ONNX export): equal?
  run "$NS" compare ../shared/cntk/models/MC.dnn --data ../shared/cntk/data/Test-3Classes_cntk_text.txt
else
  echo "(skipped: ../shared/cntk is not beside this checkout)"
fi

printf '\nDone: the models are in %s/ (seed.dnn, seed4.dnn, seed4.nsm, seed.model, layer1.nsm, seed.dump, seed4.svg or seed4.dot).\n' "$OUT"
