"""CPU latency of a BERT-base-shaped encoder before and after structured pruning (50% heads + 50% FFN).

Both models run interleaved in one process (noise hits both alike); prints the ratio of median latencies
unpruned / pruned and writes JSON.

    python benchmarks/structured_speed.py [--batch 8 --seq 128 --repeats 15 --heads 0.5 --ffn 0.5]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

from tlc_hf import prune_structured_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--heads", type=float, default=0.5)
    parser.add_argument("--ffn", type=float, default=0.5)
    parser.add_argument("--out", default="benchmarks/results/structured_speed.json")
    cli = parser.parse_args()
    torch.manual_seed(0)
    dense = BertModel(BertConfig()).eval()  # bert-base shape: 12 layers, 768 wide, 12 heads, FFN 3072
    pruned = copy.deepcopy(dense)
    report = prune_structured_(pruned, heads=cli.heads, ffn=cli.ffn)
    ids = torch.randint(1000, 20000, (cli.batch, cli.seq))
    times = {"dense": [], "pruned": []}
    with torch.inference_mode():
        for model in (dense, pruned):  # warm-up
            model(input_ids=ids)
        for _ in range(cli.repeats):
            for name, model in (("dense", dense), ("pruned", pruned)):
                start = time.perf_counter()
                model(input_ids=ids)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["dense"] / medians["pruned"]
    result = {
        "benchmark": "structured_speed",
        "shape": "bert-base (12 x 768, 12 heads, FFN 3072)",
        "batch": cli.batch,
        "seq": cli.seq,
        "heads_removed": cli.heads,
        "ffn_removed": cli.ffn,
        "params_before": report["params_before"],
        "params_after": report["params_after"],
        "median_latency_s": medians,
        "speedup_dense_over_pruned": round(ratio, 3),
        "threads": torch.get_num_threads(),
    }
    Path(cli.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cli.out).write_text(json.dumps(result, indent=2))
    print(f"params {report['params_before'] / 1e6:.1f}M -> {report['params_after'] / 1e6:.1f}M")
    print(f"median latency dense {medians['dense'] * 1e3:.0f} ms, pruned {medians['pruned'] * 1e3:.0f} ms")
    print(f"speedup unpruned / pruned = {ratio:.2f}x (batch {cli.batch} x {cli.seq}, {cli.repeats} interleaved runs)")


if __name__ == "__main__":
    main()
