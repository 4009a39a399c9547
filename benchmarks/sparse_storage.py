"""Size on disk of magnitude-pruned BERT-base-shaped weights: dense safetensors vs tlc_hf's bitmask + values.

Prints, for 50/75/90% sparsity of the block Linear weights (embeddings dense, as by default), the ratio
dense / sparse for the pruned tensors alone and for the whole model; then the whole model with its
embeddings pruned as well (so the whole file is that sparse). Checks the round trip is exact; writes JSON.

    python benchmarks/sparse_storage.py
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

from tlc_hf import MagnitudePruningConfig, prune_magnitude_
from tlc_hf.compression import find_targets
from tlc_hf.compression.storage import load_sparse_state_dict, save_sparse_state_dict


def main():
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sparsity, embeddings in ((0.5, False), (0.75, False), (0.9, False), (0.75, True)):
            model = BertModel(BertConfig()).eval()
            prune_magnitude_(model, sparsity, config=MagnitudePruningConfig(include_embeddings=embeddings))
            state = {k: v.contiguous() for k, v in model.state_dict().items()}
            target_names = {f"{name}.weight" for name in find_targets(model)}
            targets = {k: v for k, v in state.items() if k in target_names}
            sizes = {}
            for kind, tensors in (("model", state), ("targets", targets)):
                dense_path, sparse_path = os.path.join(tmp, f"d-{kind}"), os.path.join(tmp, f"s-{kind}")
                save_file(tensors, dense_path)
                save_sparse_state_dict(tensors, sparse_path)
                sizes[kind] = (os.path.getsize(dense_path), os.path.getsize(sparse_path))
                if kind == "model":
                    loaded = load_sparse_state_dict(sparse_path)
                    assert all(torch.equal(loaded[k], v) for k, v in state.items())
            rows.append(
                {
                    "sparsity": sparsity,
                    "embeddings_pruned": embeddings,
                    "targets_dense_mb": sizes["targets"][0] / 1e6,
                    "targets_sparse_mb": sizes["targets"][1] / 1e6,
                    "targets_ratio": round(sizes["targets"][0] / sizes["targets"][1], 2),
                    "model_dense_mb": sizes["model"][0] / 1e6,
                    "model_sparse_mb": sizes["model"][1] / 1e6,
                    "model_ratio": round(sizes["model"][0] / sizes["model"][1], 2),
                }
            )
            r = rows[-1]
            print(
                f"sparsity {sparsity:.0%}: pruned tensors {r['targets_dense_mb']:.0f} MB -> {r['targets_sparse_mb']:.0f} MB "
                f"({r['targets_ratio']}x); whole model {r['model_dense_mb']:.0f} MB -> {r['model_sparse_mb']:.0f} MB "
                f"({r['model_ratio']}x, embeddings {'pruned too' if embeddings else 'dense'}); round trip exact"
            )
    out = Path("benchmarks/results/sparse_storage.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "sparse_storage", "shape": "bert-base", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
