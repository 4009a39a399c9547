"""Quantization during training: QAT (fake quantization with a straight-through estimator from a scheduled
progress point) and Quant-Noise (Fan et al. 2020: quantize a random fraction of weight blocks each step)."""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

from ...logs import add_log_fields
from ..base import CompressionCallback, ramp_value, record_compression
from ..generators import restore_generator, save_generator
from ..sharding import full, set_full_
from ..targets import find_targets
from .config import QuantizationConfig
from .simulated import fake_quantize, ste_fake_quantize


def wrap_weight(module: torch.nn.Linear, weight_fn) -> None:
    """Run `module` with `weight_fn(weight)` in place of its weight (state_dict keys do not change)."""

    def forward(self, x):
        return F.linear(x, weight_fn(self), self.bias)

    module.forward = types.MethodType(forward, module)


def linear_targets(model, config: QuantizationConfig) -> dict[str, torch.nn.Linear]:
    """The config's target modules that are Linear layers (the ones a weight wrapper applies to)."""
    targets = find_targets(model, config.target_modules, config.include_embeddings, config.include_head)
    return {name: module for name, module in targets.items() if isinstance(module, torch.nn.Linear)}


def unwrap_weight(module: torch.nn.Module) -> None:
    module.__dict__.pop("forward", None)


class QATCallback(CompressionCallback):
    """Quantization-aware training: from progress `config.start`, target Linear weights are fake-quantized
    to `config.bits` in every forward pass (gradients pass straight through). At the end the weights are
    set to their quantized values and the config is recorded; `tlc_hf.quantize(model, config)` with
    `config.backend` ("torchao", "onnxruntime", "bitsandbytes") then makes the real int8 model.

    The fake-quantized forward is installed at train begin, inactive, and switched on at `start` (a flag:
    no module or parameter is replaced after the model is wrapped, e.g. by FSDP2, whose forward sees the
    whole unsharded weight)."""

    def __init__(self, config: QuantizationConfig | None = None, budget=None, **config_kwargs):
        super().__init__(budget)
        self.config = config or QuantizationConfig(**{"backend": "torchao", "start": 0.0, **config_kwargs})
        self.targets, self.active = {}, False

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.check_engine(model, args)
        self.targets = linear_targets(model, self.config)
        for module in self.targets.values():
            wrap_weight(module, self._weight)
        self._maybe_start(state)

    def on_step_begin(self, args, state, control, **kwargs):
        self._maybe_start(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        add_log_fields(state, logs, {"qat_active": int(self.active)})

    def _weight(self, module: torch.nn.Linear) -> torch.Tensor:
        if not self.active:
            return module.weight
        c = self.config
        return ste_fake_quantize(module.weight, c.bits, c.granularity, c.symmetric)

    def _maybe_start(self, state) -> None:
        if not self.active and self.progress(state) >= self.config.start:
            self.active = True

    @torch.no_grad()
    def on_train_end(self, args, state, control, model=None, **kwargs):
        for module in self.targets.values():
            unwrap_weight(module)
        if not self.active:
            return
        c = self.config
        for module in self.targets.values():  # the whole weight's grid (per-tensor scales span all shards)
            set_full_(module.weight, fake_quantize(full(module.weight), c.bits, c.granularity, c.symmetric))
        self.active = False
        record_compression(model, {**c.to_dict(), "qat": True, "backend": "simulated"}, convert_to=c.backend)


class QuantNoiseCallback(CompressionCallback):
    """Quant-Noise: in each training forward pass, a random `noise_rate` fraction of each target weight's
    blocks (`block_size` consecutive input weights) is fake-quantized to `bits`, with a straight-through
    gradient. The rate ramps from 0 at `start` to `noise_rate` at `end`. Evaluation uses plain weights.
    A seeded generator's state goes into checkpoints (`tlc_quant_noise_generator.safetensors`), so a
    resumed run draws the blocks the uninterrupted one would."""

    def __init__(
        self, config: QuantizationConfig | None = None, budget=None, seed: int | None = None, **config_kwargs
    ):
        super().__init__(budget)
        self.config = config or QuantizationConfig(**{"start": 0.0, "end": 0.0, **config_kwargs})
        self.rate = 0.0
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.targets = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.check_engine(model, args)
        restore_generator(self.generator, args, state, "quant_noise")
        self.targets = linear_targets(model, self.config)
        for module in self.targets.values():
            wrap_weight(module, self._noisy_weight)
        self.on_step_begin(args, state, control)

    def on_step_begin(self, args, state, control, **kwargs):
        c = self.config
        self.rate = ramp_value(self.progress(state), 0.0, c.noise_rate, c.start, c.end, c.ramp)

    def on_save(self, args, state, control, **kwargs):
        save_generator(self.generator, args, state, "quant_noise")

    def on_log(self, args, state, control, logs=None, **kwargs):
        add_log_fields(state, logs, {"quant_noise_rate": round(self.rate, 4)})

    def on_train_end(self, args, state, control, **kwargs):
        for module in self.targets.values():
            unwrap_weight(module)

    def _noisy_weight(self, module: torch.nn.Linear) -> torch.Tensor:
        weight = module.weight
        if not module.training or self.rate <= 0:
            return weight
        c = self.config
        out_features, in_features = weight.shape
        blocks = -(-in_features // c.block_size)
        chosen = torch.rand((out_features, blocks), generator=self.generator) < self.rate
        mask = chosen.repeat_interleave(c.block_size, dim=1)[:, :in_features].to(weight.device)
        quantized = fake_quantize(weight.detach(), c.bits, c.granularity, c.symmetric)
        return weight + (mask * (quantized - weight)).detach()
