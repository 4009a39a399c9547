"""The candidate sizes and what each costs to train here: a depth family and a width family around the base
(`scale_config`), each timed for a few real MLM training steps at the real batch and sequence length."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from transformers import PretrainedConfig

from ..modeling import build_model
from ..scaling.breakdown import param_breakdown
from ..scaling.scale import scale_config
from ..scaling.sweep import parse_sizes
from .request import PlanRequest
from .result import CandidatePlan

FAMILY_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class CandidateShapes:
    """How a candidate (depth x width) becomes a config: the base's family and head size, the tokenizer's
    vocabulary, the training length and the deployed head.

    Example:
        ```python
        shapes = CandidateShapes.from_base(resolve_config("roberta-base"), tokenizer, seq_len=128)
        shapes.deployed(6, 384)  # a 6-layer, 384-wide roberta config with a 2-label head
        ```
    """

    base_config: PretrainedConfig
    head_size: int
    vocab_size: int
    pad_token_id: int | None
    seq_len: int
    task: str = "classification"

    @classmethod
    def from_base(cls, base_config, tokenizer, seq_len: int, task: str = "classification") -> CandidateShapes:
        head_size = base_config.hidden_size // base_config.num_attention_heads
        return cls(base_config, head_size, len(tokenizer), tokenizer.pad_token_id, seq_len, task)

    def grid(self, sizes=None) -> list[tuple[int, int, str]]:
        """(depth, width, family) triples: `sizes` ("DEPTHxWIDTH,...") if given, else the depth family (the
        base's depth x `FAMILY_FRACTIONS` at its width) and the width family (the reverse)."""
        if sizes is not None:
            return [(d, w, "given") for d, w in parse_sizes(sizes)]
        depth, width = self.base_config.num_hidden_layers, self.base_config.hidden_size
        grid = {}
        for f in FAMILY_FRACTIONS:
            grid.setdefault((max(1, round(depth * f)), width), "depth")
            grid.setdefault((depth, max(self.head_size, round(width * f / self.head_size) * self.head_size)), "width")
        return [(d, w, family) for (d, w), family in grid.items()]

    def training(self, depth: int, width: int) -> PretrainedConfig:
        """The config a candidate is pretrained with (MLM, the tokenizer's vocabulary)."""
        config = scale_config(self.base_config, depth, width, head_dim=self.head_size)
        config.vocab_size = self.vocab_size
        config.max_position_embeddings = max(config.max_position_embeddings, self.seq_len + 2)
        config.pad_token_id = self.pad_token_id
        return config

    def deployed(self, depth: int, width: int) -> PretrainedConfig:
        """The config a candidate is deployed with (the task's head), before compression."""
        config = self.training(depth, width)
        if self.task == "classification":
            config.num_labels = 2
        return config


def candidate_label(depth: int, width: int) -> str:
    return f"L{depth}xH{width}"


def timed_candidates(grid: list[tuple[int, int, str]], shapes: CandidateShapes, request: PlanRequest) -> list:
    """A `CandidatePlan` per (depth, width, family): its step time (`time_training_step` at the request's batch
    and length), steps and tokens in the budget, and its learning rate (the request's for the smallest size,
    scaled down in proportion to width and depth: the main job's per-size rule)."""
    smallest = min(grid, key=lambda g: g[0] * g[1] ** 2)
    candidates = []
    for depth, width, family in grid:
        config = shapes.training(depth, width)
        step_s = time_training_step(config, request.batch_size, request.seq_len, request.device)
        steps = int(request.budget_s / step_s)
        candidates.append(
            CandidatePlan(
                label=candidate_label(depth, width),
                family=family,
                num_layers=depth,
                hidden_size=width,
                params=param_breakdown(config)["total"],
                step_s=step_s,
                steps_in_budget=steps,
                tokens_in_budget=steps * request.batch_size * request.seq_len,
                learning_rate=request.learning_rate * (smallest[1] / width) * (smallest[0] / depth),
            )
        )
    return candidates


def time_training_step(config, batch_size: int, seq_len: int, device: str = "cpu", steps: int = 3) -> float:
    """Seconds per MLM training step (forward, backward, AdamW; the fastest of `steps` after one untimed), on
    random tokens. The fastest, not the median: on a shared machine another process's OpenMP threads can
    stretch single steps of a small model 30x (measured here: a 1x32 step at 0.63 s instead of 16 ms while
    other torch jobs ran), and this probe only decides which sizes are too large; the sweep's own clock gives
    the steps in the budget.

    Example:
        ```python
        time_training_step(scale_config("roberta-tiny", 2, 64), batch_size=8, seq_len=64)  # e.g. 0.02
        ```
    """
    torch.manual_seed(0)
    model = build_model(config, "mlm").to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(5, config.vocab_size, (batch_size, seq_len), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = []
    for _ in range(steps + 1):
        sync()
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        times.append(time.perf_counter() - start)
    return min(times[1:])
