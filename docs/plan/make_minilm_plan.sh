#!/usr/bin/env bash
# Regenerates docs/plan/minilm-10m/, the worked example in docs/plan/README.md: which size of the
# all-MiniLM-L6-v2 shape to train in 10 minutes on this CPU, and how to compress it to 20 MB and 15 ms
# (batch 1 x 128 tokens, ONNX Runtime int8). Trained at batch 8 x 64 tokens and scored on 32 validation blocks
# per evaluation, so that the whole plan takes minutes on 2 CPU cores (the MLM head over MiniLM's 30,522 tokens
# makes each evaluation cost as much as training). Run it alone on the machine (latencies are measured):
#     flock /tmp/tlc_cpu.lock docs/plan/make_minilm_plan.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1
base=$(python -c "from tlc_hf.pretrained import minilm_dir; print(minilm_dir())")  # its config and WordPiece tokenizer
tlc-hf plan --time_budget 10m --max_size 20MB --max_latency 15ms --device cpu --base "$base" \
    --task classification --batch_size 8 --seq_len 64 --eval_blocks 32 --sweep_fraction 0.2 \
    --output_dir docs/plan/minilm-10m --overwrite
