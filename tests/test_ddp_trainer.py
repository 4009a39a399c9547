"""Compression through the real Trainer under DDP on CPU: `accelerate launch --multi_gpu --num_processes 2`
(accelerate's MULTI_CPU, torchrun over gloo) gives what the same Trainer gives in one process.

tests/scripts/ddp_trainer_worker.py runs `DistillationTrainer` with hidden states (a wider teacher: learned
projections) + gradual structured pruning + seeded DropHead on a tiny BERT and a tiny T5, once in one process
and once on 2 ranks; each rank compares itself with the one-process run.
"""

import json
import sys
from pathlib import Path

import pytest

from tlc_hf.testing.processes import accelerate_launch_command, free_port, run_checked

WORKER = Path(__file__).parent / "scripts" / "ddp_trainer_worker.py"
FAMILIES = ("bert", "t5")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Results of both ranks: {family: measurements against the one-process run}."""
    out = tmp_path_factory.mktemp("ddp_trainer")
    run_checked([sys.executable, WORKER, out / "reference"], timeout=300)
    run_checked([*accelerate_launch_command(2, port=free_port()), WORKER, out / "ddp", out / "reference"], timeout=300)
    return [json.loads((out / "ddp" / f"results-{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.parametrize("family", FAMILIES)
def test_trainer_under_ddp_matches_one_process(ranks, family):
    for result in (rank[family] for rank in ranks):
        # the real path: accelerate's MULTI_CPU state, the model wrapped in DDP, the callbacks see "ddp"
        assert result["distributed_type"] == "DistributedType.MULTI_CPU"
        assert result["wrapper"] == "DistributedDataParallel"
        assert result["engines"] == ["ddp", "ddp"]
        # structured removal: the same units removed (shapes, zero patterns) as in one process
        assert result["same_keys"] and result["zeros_equal"]
        assert result["params"] == result["reference_params"]
        assert result["weights_max_diff"] <= 1e-4
        # hidden-state KD's projections (outside DDP) are averaged over ranks like the model's gradients
        assert result["projections"] > 0 and result["projections_diff"] <= 1e-4
        assert result["projections_moved"] > 1e-3  # they trained (equal to one process would hold untrained too)
        # DropHead drew for the global batch: same heads per sample as one process, at the configured rate
        assert result["drophead_rate"] == pytest.approx(0.3)
        # trainer.save_model's output reloads with plain from_pretrained and computes the same as one process
        assert result["reload_vs_reference"] <= 1e-4
        assert result["methods"] == result["reference_methods"] == ["structured", "drophead"]
