"""Knowledge distillation: `DistillationTrainer` (and its seq2seq variant) with a frozen teacher.

loss = alpha * task_loss + (1 - alpha) * T^2 * KL(teacher_T || student_T) [+ beta * hidden-state MSE]

The KL term runs over the positions that carry a label (every example for classification; masked tokens
for MLM; target tokens for seq2seq). A subclass of `BudgetTrainer`: it trains under a time budget and
with the pruning / QAT callbacks in the same run.
"""

from __future__ import annotations

import hashlib
import logging
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import TrainerCallback

from ...training.trainer import BudgetSeq2SeqTrainer, BudgetTrainer
from ..sharding import trainer_steps_in_backward
from .config import DistillationConfig
from .hidden import (
    HiddenStateLoss,
    average_gradients_,
    broadcast_parameters_,
    default_layer_map,
    hidden_states,
)

__all__ = [
    "DistillationSeq2SeqTrainer",
    "DistillationTrainer",
    "DistillationTrainerMixin",
    "default_layer_map",
    "kd_loss",
]

PROJECTIONS_NAME = "tlc_distillation_projections.safetensors"  # beside the optimizer in each checkpoint
logger = logging.getLogger(__name__)


def kd_loss(student_logits, teacher_logits, labels, temperature: float) -> torch.Tensor:
    """T^2 * KL(teacher || student) at softened temperature, over labelled positions."""
    if student_logits.dim() == 3:  # token level: keep positions with a label
        keep = labels != -100
        student_logits, teacher_logits = student_logits[keep], teacher_logits[keep]
    if student_logits.numel() == 0:
        return student_logits.sum() * 0.0
    log_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature**2


class DistillationTrainerMixin:
    def __init__(self, *args, teacher_model=None, distillation: DistillationConfig | None = None, **kwargs):
        if teacher_model is None:
            raise ValueError("DistillationTrainer needs teacher_model=...")
        super().__init__(*args, **kwargs)
        self.distillation = distillation or DistillationConfig()
        self.teacher = teacher_model.to(self.args.device).eval()
        self.teacher.requires_grad_(False)
        self._teacher_cache: dict[bytes, torch.Tensor] = {}
        self.projections = nn.ModuleList()
        if self.distillation.hidden_weight > 0:
            self.hidden_loss = HiddenStateLoss(self.model, self.teacher, self.distillation.layer_map).to(
                self.args.device
            )
            self.layer_map, self.projections = self.hidden_loss.layer_map, self.hidden_loss.projections
            if self.args.world_size > 1:  # replicated outside the wrapper: every rank starts from rank 0's
                broadcast_parameters_(self.projections)
            # the Trainer zeroes the model's gradients after each step, not the projections' (outside the model)
            self.add_callback(_ZeroGradsAtStepEnd(self.projections))
            if self._learned_projections() and trainer_steps_in_backward(self.args):
                raise ValueError(
                    "DistillationTrainer with hidden_weight > 0 under deepspeed: the student and teacher widths "
                    "differ, so the loss learns projections, which DeepSpeed's optimizer (stepped inside backward) "
                    "does not hold; use a teacher of the student's width, hidden_weight=0, or shard with FSDP2"
                )

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(*(() if model is None else (model,)))
        trainable = [p for p in self.projections.parameters() if p.requires_grad]
        if trainable:  # learned projections for hidden states when widths differ
            optimizer.add_param_group({"params": trainable, "weight_decay": 0.0})
        return optimizer

    def _learned_projections(self) -> dict[str, torch.Tensor]:
        learned = any(p.requires_grad for p in self.projections.parameters())
        return dict(self.projections.state_dict()) if learned else {}

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        # the learned projections train with the optimizer: a checkpoint without them resumes a different loss
        super()._save_optimizer_and_scheduler(output_dir)
        learned = self._learned_projections()
        if learned and self.args.should_save:
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in learned.items()},
                os.path.join(output_dir, PROJECTIONS_NAME),
            )

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None or not self._learned_projections():
            return
        path = os.path.join(checkpoint, PROJECTIONS_NAME)
        if os.path.exists(path):
            self.projections.load_state_dict(load_file(path, device=str(self.args.device)))
        else:
            logger.warning(
                "resuming from %s without the hidden-state projections (no %s; written by tlc_hf before "
                "2026-12-02?): they start again from a fresh initialisation",
                checkpoint,
                PROJECTIONS_NAME,
            )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        c = self.distillation
        inputs = self._augment(inputs) if c.augment != "none" and model.training else inputs
        want_hidden = c.hidden_weight > 0
        outputs = model(**inputs, output_hidden_states=want_hidden) if want_hidden else model(**inputs)
        task_loss = outputs.loss
        labels = inputs.get("labels")
        teacher_logits, teacher_hidden = self._teacher_outputs(inputs, want_hidden)
        loss = c.alpha * task_loss + (1 - c.alpha) * kd_loss(outputs.logits, teacher_logits, labels, c.temperature)
        if want_hidden:
            loss = loss + c.hidden_weight * self.hidden_loss(hidden_states(outputs), teacher_hidden)
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.accelerator.sync_gradients and self.args.world_size > 1:
            # the projections are replicated outside the DDP / FSDP wrapper: average their gradients like the model's
            average_gradients_(self.projections)
        return loss

    @torch.no_grad()
    def _teacher_outputs(self, inputs, want_hidden):
        cacheable = (
            self.distillation.cache_teacher
            and not want_hidden
            and inputs.get("labels") is not None
            and inputs["labels"].dim() == 1
        )
        keys = [hashlib.sha1(row.cpu().numpy().tobytes()).digest() for row in inputs["input_ids"]] if cacheable else []
        if cacheable and all(k in self._teacher_cache for k in keys):
            return torch.stack([self._teacher_cache[k] for k in keys]).to(self.args.device), None
        outputs = self.teacher(**inputs, output_hidden_states=want_hidden) if want_hidden else self.teacher(**inputs)
        if cacheable:
            for key, row in zip(keys, outputs.logits, strict=True):
                self._teacher_cache[key] = row.detach().cpu()
        return outputs.logits, hidden_states(outputs) if want_hidden else None

    def _augment(self, inputs):
        tokenizer = self.processing_class
        ids = inputs["input_ids"].clone()
        special = torch.zeros_like(ids, dtype=torch.bool)
        for token_id in getattr(tokenizer, "all_special_ids", []) or []:
            special |= ids == token_id
        chosen = (torch.rand(ids.shape, device=ids.device) < self.distillation.augment_prob) & ~special
        if self.distillation.augment == "mask" and getattr(tokenizer, "mask_token_id", None) is not None:
            ids[chosen] = tokenizer.mask_token_id
        else:
            ids[chosen] = torch.randint(0, self.model.config.vocab_size, (int(chosen.sum()),), device=ids.device)
        return {**inputs, "input_ids": ids}


class _ZeroGradsAtStepEnd(TrainerCallback):
    """Zero a module's gradients where the Trainer zeroes the model's: after each optimizer step."""

    def __init__(self, module: nn.Module):
        self.module = module

    def on_step_end(self, args, state, control, **kwargs):
        self.module.zero_grad(set_to_none=True)


class DistillationTrainer(DistillationTrainerMixin, BudgetTrainer):
    """`BudgetTrainer` that distills `teacher_model` into the model (classification, MLM)."""


class DistillationSeq2SeqTrainer(DistillationTrainerMixin, BudgetSeq2SeqTrainer):
    """`BudgetSeq2SeqTrainer` that distills a T5/mT5 teacher into the model (token-level KL on targets)."""
