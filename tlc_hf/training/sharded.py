"""FSDP2 training with tlc_hf's compression callbacks, on CPU or GPU, without accelerate.

accelerate 1.15 runs its FSDP plugin only on accelerators (a CPU run becomes MULTI_CPU and gets DDP), so a
stock `Trainer` cannot shard on CPU. `train_sharded` is the loop the Trainer would run, with the Trainer's
own `CallbackHandler` and `DefaultFlowCallback`, calling every callback event in the Trainer's order
(train_begin, step_begin, backward, pre_optimizer_step, step, optimizer_step, zero_grad, step_end, log,
train_end), on a model sharded with `fully_shard`. `save_whole` gathers the shards and writes a plain
Hugging Face checkpoint with `config.tlc_compression`, loadable with `from_pretrained`.

With `save_steps` it writes sharded checkpoints (`sharded_checkpoint`: DCP model + optimizer, the callbacks'
files, `trainer_state.json`) that `resume_from_checkpoint` continues from in new processes, also in another
world size; the pruning callbacks rebuild their masks from the zeros and reload movement scores.

A `deepspeed.DeepSpeedEngine` (ZeRO-1/2/3) trains the same way: `engine.backward`, then the pre-optimizer-step
event (the gradients are still there), then `engine.step`. accelerate's Trainer steps the engine inside
backward instead, so callbacks that read gradients (movement pruning) run under DeepSpeed only here.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import CallbackHandler, DefaultFlowCallback

from ..compression import zero
from ..compression.base import get_method
from ..compression.distillation.config import DistillationConfig
from ..compression.distillation.hidden import (
    HiddenStateLoss,
    average_gradients_,
    broadcast_parameters_,
    hidden_states,
)
from ..compression.distillation.trainer import kd_loss
from ..compression.sharding import data_parallel_group, detect_engine, finalize_whole_, full, unwrap_model
from .sharded_checkpoint import load_sharded_checkpoint, resolve_checkpoint, save_sharded_checkpoint

logger = logging.getLogger(__name__)
_BLOCK = re.compile(r"(^|.*\.)(layer|block)\.\d+")


def shard_model_(model: nn.Module, mesh=None) -> nn.Module:
    """Shard `model` with FSDP2 in place: each transformer block (BERT `layer.N`, T5 `block.N`), then the root.

    Args:
        model: a BERT / RoBERTa / XLM-R / T5 / mT5 model, with its compression prepared (QAT, depth).
        mesh: a 1-D `DeviceMesh`; default: all ranks of the default process group on the model's device.

    Example:
        ```python
        dist.init_process_group("gloo")
        shard_model_(model, init_device_mesh("cpu", (2,)))
        ```
    """
    if mesh is None:
        device = next(model.parameters()).device.type
        mesh = init_device_mesh(device, (dist.get_world_size(),))
    blocks = [name for name, _ in model.named_modules() if _BLOCK.fullmatch(name)]
    for name in blocks:  # the outermost blocks only (a T5 block holds `layer.N` sub-layers)
        if not any(name.startswith(other + ".") for other in blocks):
            fully_shard(model.get_submodule(name), mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _rank_slice(batch: dict, model: nn.Module) -> dict:
    """This rank's contiguous part of a global batch when `model` is sharded (or wrapped in DDP); the whole
    batch otherwise."""
    group = data_parallel_group(model)
    if group is None:
        return batch
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    out = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            if value.shape[0] % world:
                raise ValueError(f"batch size {value.shape[0]} of {key!r} does not split over {world} ranks")
            size = value.shape[0] // world
            value = value[rank * size : (rank + 1) * size]
        out[key] = value
    return out


def train_sharded(
    model: nn.Module,
    batches: Sequence[dict],
    callbacks: Sequence = (),
    *,
    output_dir: str,
    learning_rate: float = 1e-3,
    loss_fn: Callable | None = None,
    logging_steps: int = 1,
    save_steps: int | None = None,
    resume_from_checkpoint: str | bool | None = None,
) -> list[dict]:
    """Train `model` on `batches` with `callbacks`, calling their events in the Trainer's order.

    Each batch is the global batch: on a sharded model every rank trains on its contiguous part (so one
    process on the whole batch computes the same mean gradient). AdamW without weight decay, a constant
    learning rate, one optimizer step per batch. Returns the logs (one dict per logging step). The run stops
    early when a callback sets `control.should_training_stop` (after saving if one set `should_save`).

    Args:
        model: a model sharded with `shard_model_` (or a plain one: the one-process reference), or a
            `deepspeed.DeepSpeedEngine` (its own optimizer and config; `learning_rate` is not used then, and
            the engine clips gradients at its config's `gradient_clipping`, 1.0 unless set: set 0 to train
            like the unclipped loop here).
        batches: dicts of tensors with labels (or what `loss_fn` needs).
        callbacks: `TrainerCallback`s (tlc_hf's compression callbacks, a budget callback, ...).
        output_dir: the run's directory (`TrainingArguments.output_dir`).
        learning_rate: AdamW's learning rate.
        loss_fn: `loss_fn(model, batch) -> loss`; default `model(**batch).loss`.
        logging_steps: call `on_log` every this many steps.
        save_steps: write `output_dir/checkpoint-<step>` every this many steps and at the end (and whenever
            a callback sets `control.should_save`); default: only when a callback asks.
        resume_from_checkpoint: a `checkpoint-N` folder of `output_dir`, or True for the newest complete one:
            load it, skip the first N batches and train the rest (the same `batches`, any world size).

    Example:
        ```python
        train_sharded(shard_model_(model), batches, [MagnitudePruningCallback(sparsity=0.5)], output_dir="out")
        # in new processes, after a stop at a checkpoint:
        train_sharded(shard_model_(model), batches, callbacks, output_dir="out", resume_from_checkpoint=True)
        ```
    """
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=len(batches),
        learning_rate=learning_rate,
        weight_decay=0.0,
        logging_steps=logging_steps,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        report_to="none",
        disable_tqdm=True,
        use_cpu=next(model.parameters()).device.type == "cpu",
    )
    engine = model if zero.is_engine(model) else None
    if engine is not None and (save_steps or resume_from_checkpoint):
        raise ValueError(
            f"save_steps={save_steps}, resume_from_checkpoint={resume_from_checkpoint!r} with a DeepSpeed engine: "
            "train_sharded checkpoints FSDP2, DDP and plain models; use engine.save_checkpoint / load_checkpoint"
        )
    checkpoint = resolve_checkpoint(resume_from_checkpoint, output_dir) if resume_from_checkpoint else None
    # a loss with parameters (distillation's hidden-state projections): replicated, trained beside the model
    loss_params = [p for p in loss_fn.parameters() if p.requires_grad] if isinstance(loss_fn, nn.Module) else []
    if engine is not None and loss_params:
        raise ValueError(
            f"loss_fn {type(loss_fn).__name__} has {len(loss_params)} trainable tensors (hidden-state projections: "
            "student and teacher widths differ) that a DeepSpeed engine's optimizer does not hold; "
            "use a teacher of the student's width, or shard with FSDP2"
        )
    if loss_params and (save_steps or resume_from_checkpoint):
        raise ValueError(
            f"save_steps={save_steps}, resume_from_checkpoint={resume_from_checkpoint!r} with a loss_fn that trains "
            f"{len(loss_params)} tensors of its own (hidden-state projections): checkpoints hold the model and its "
            "optimizer only; train without checkpoints, or with a teacher of the student's width"
        )
    if engine is not None:
        optimizer = engine.optimizer
    else:
        groups = [{"params": list(model.parameters())}] + ([{"params": loss_params}] if loss_params else [])
        optimizer = torch.optim.AdamW(groups, lr=learning_rate, weight_decay=0.0)
    # like the Trainer, callbacks get the model itself (DDP's / DeepSpeed's wrapper removed; FSDP2 shards in place)
    handler = CallbackHandler([DefaultFlowCallback, *callbacks], unwrap_model(model), None, optimizer, None)
    state = TrainerState(max_steps=len(batches), logging_steps=logging_steps, save_steps=save_steps or 0)
    state.is_world_process_zero = not dist.is_initialized() or dist.get_rank() == 0
    control = TrainerControl()
    if checkpoint is not None:  # before train begin, as the Trainer loads it: callbacks see the resumed step
        state, control = load_sharded_checkpoint(checkpoint, model, optimizer, handler, len(batches), control)
    group = data_parallel_group(model)
    if loss_params and group is not None:  # replicated: every rank starts from the first rank's initialisation
        broadcast_parameters_(loss_fn, group)
    loss_fn = loss_fn or (lambda m, b: m(**b).loss)
    logs = []
    model.train()
    model.zero_grad()
    control = handler.on_train_begin(args, state, control)
    control = handler.on_epoch_begin(args, state, control)
    for batch in batches[state.global_step :]:
        control = handler.on_step_begin(args, state, control)
        loss = loss_fn(model, _rank_slice(batch, model))
        engine.backward(loss) if engine is not None else loss.backward()
        if loss_params and group is not None:  # replicated over the ranks that split the batch, averaged like DDP
            average_gradients_(loss_fn, group)
        control = handler.on_pre_optimizer_step(args, state, control)
        engine.step() if engine is not None else optimizer.step()  # DeepSpeed's step zeroes the gradients
        control = handler.on_optimizer_step(args, state, control)
        if engine is None:
            model.zero_grad()
            if loss_params:
                loss_fn.zero_grad()
        state.global_step += 1
        state.epoch = state.global_step / len(batches)
        control = handler.on_step_end(args, state, control)
        if control.should_log:
            entry = {"loss": _mean_over_ranks(loss.detach(), model), "step": state.global_step}
            control = handler.on_log(args, state, control, logs=entry)
            logs.append(entry)
            control.should_log = False
        if control.should_save:
            if engine is not None:  # a budget's preemption, say: keep training, but say it
                logger.warning(
                    "step %d: no checkpoint of a DeepSpeed engine here (engine.save_checkpoint)", state.global_step
                )
            else:
                control = save_sharded_checkpoint(model, optimizer, handler, args, state, control)
            control.should_save = False
        if control.should_training_stop:
            break
    control = handler.on_epoch_end(args, state, control)
    handler.on_train_end(args, state, control)
    return logs


def _mean_over_ranks(loss: torch.Tensor, model: nn.Module) -> float:
    if detect_engine(model) not in ("fsdp2", "ddp", "deepspeed"):
        return float(loss)
    loss = loss.clone()
    dist.all_reduce(loss)
    return float(loss) / dist.get_world_size()


def _plain_class(model: nn.Module) -> type:
    """The model's own class (FSDP2 swaps in a subclass `FSDP<Class>`)."""
    return next(c for c in type(model).__mro__ if not issubclass(c, FSDPModule))


def _refuse_meta(model: nn.Module, action: str) -> None:
    """A one-line ValueError when a weight of `model` is on the meta device (no values to gather or save).
    Every rank of a sharded model holds the same meta entries, so every rank refuses: nothing hangs."""
    tensors = (*model.named_parameters(), *model.named_buffers())
    name = next((k for k, v in tensors if v.is_meta), None)  # a DTensor is meta where its local shard is
    if name is not None:
        raise ValueError(
            f"{action}: {name} is on the meta device (never materialised, no values); materialise the model "
            "first: model.to_empty(device=...) then load its weights (set_model_state_dict, load_state_dict or "
            "train_sharded(..., resume_from_checkpoint=...))"
        )


def gather_whole(model: nn.Module, rank0_only: bool = True) -> nn.Module | None:
    """A plain (unsharded) copy of `model` on CPU, built from its config and its gathered full state dict,
    with the steps compression deferred to the whole model applied (structured pruning removes its units).

    A collective: every rank must call it. With `rank0_only` only rank 0 gets the model (others get None).
    A DeepSpeed engine (or its module) is gathered with `GatheredParameters` under ZeRO-3. A model with
    weights on the meta device (never materialised) is refused in one line, before any communication.
    """
    rank = dist.get_rank() if dist.is_initialized() else 0
    keep = rank == 0 or not rank0_only
    model = unwrap_model(model)
    _refuse_meta(model, "gather_whole")
    state = {}
    if zero.zero_stage(model):
        state = zero.whole_state_dict(model)
    else:
        for key, value in model.state_dict().items():
            value = full(value).detach()  # gathered on every rank, one tensor at a time
            if keep:
                state[key] = value.cpu().clone()
    if not keep:
        return None
    whole = _plain_class(model)(copy.deepcopy(model.config))
    whole.load_state_dict(state, strict=True)
    finalize_whole_(model, whole)
    return whole.eval()


def save_whole(model: nn.Module, output_dir: str) -> str:
    """Save a sharded (or plain) `model` whole: gather the full weights on rank 0 (`gather_whole`: structured
    pruning removes its masked units there) and write `save_pretrained` output with `config.tlc_compression`
    (a temp folder, then a rename: never a half-written directory). A collective; returns `output_dir`.

    Example:
        ```python
        save_whole(model, "out/final")
        AutoModelForMaskedLM.from_pretrained("out/final")  # after import tlc_hf
        ```
    """
    _refuse_meta(unwrap_model(model), "save_whole")
    engine = detect_engine(model)
    whole = gather_whole(model) if engine in ("fsdp2", "deepspeed") else unwrap_model(model)
    if whole is not None and (not dist.is_initialized() or dist.get_rank() == 0):
        parent = os.path.dirname(os.path.abspath(output_dir))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tlc-save-", dir=parent)
        try:
            whole.save_pretrained(tmp)
            if os.path.isdir(output_dir):
                shutil.rmtree(output_dir)
            os.replace(tmp, output_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if dist.is_initialized():
        dist.barrier()
    return output_dir


def recipe_callbacks(recipe) -> list:
    """The during-training callbacks of a `CompressionRecipe`'s methods (pruning schedules, QAT, DropHead), for
    `train_sharded`. Methods that change shapes before training (depth, vocabulary) are refused in one line:
    apply them to the whole model before sharding. Post-training steps (int8 backends, ONNX) run on the saved
    whole model afterwards.

    Example:
        ```python
        callbacks = recipe_callbacks(CompressionRecipe.load("examples/fsdp2_recipe.yaml"))
        ```
    """
    callbacks, before = [], []
    for config in recipe.methods:
        method = get_method(config.method)
        if method.before_training:
            before.append(config.method)
        callback = method.callback(config) if method.callback is not None else None
        if callback is not None:
            callbacks.append(callback)
    if before:
        raise ValueError(
            f"methods {before} change shapes before training: apply them to the whole model before sharding "
            "(get_method(name).apply), then shard and pass a recipe without them"
        )
    return callbacks


class DistillationLoss(nn.Module):
    """`loss_fn(model, batch)` for `train_sharded`: the `DistillationTrainer`'s loss, alpha * task loss +
    (1 - alpha) * T^2 * KL(teacher || student) [+ hidden_weight * hidden-state MSE], with the teacher sharded or
    whole. Build it with `distillation_loss`.

    Its parameters are the hidden-state projections (when the student's width differs from the teacher's): a
    plain module replicated on every rank, which `train_sharded` adds to its optimizer, copies from the first
    data-parallel rank before the first step, and whose gradients it averages over those ranks before each step. The teacher is held, not registered: its weights
    are neither trained nor in `parameters()`.

    Args:
        teacher: the frozen teacher, sharded or whole.
        config: a `DistillationConfig`.
        student: the student (whole, DDP-wrapped or sharded); needed with `hidden_weight > 0`.

    Example:
        ```python
        loss = DistillationLoss(teacher, DistillationConfig(), student=model)(model, batch)
        ```
    """

    def __init__(self, teacher: nn.Module, config, student: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.__dict__["teacher"] = teacher.eval().requires_grad_(False)  # not a submodule
        self.hidden = HiddenStateLoss(student, teacher, config.layer_map) if config.hidden_weight > 0 else None

    def forward(self, model: nn.Module, batch: dict) -> torch.Tensor:
        c, want_hidden = self.config, self.hidden is not None
        outputs = model(**batch, output_hidden_states=True) if want_hidden else model(**batch)
        with torch.no_grad():
            teacher = self.teacher(**batch, output_hidden_states=True) if want_hidden else self.teacher(**batch)
        loss = c.alpha * outputs.loss + (1 - c.alpha) * kd_loss(
            outputs.logits, teacher.logits, batch.get("labels"), c.temperature
        )
        if want_hidden:
            loss = loss + c.hidden_weight * self.hidden(hidden_states(outputs), hidden_states(teacher))
        return loss


def distillation_loss(teacher: nn.Module, config=None, student: nn.Module | None = None) -> DistillationLoss:
    """The distillation loss for `train_sharded` (see `DistillationLoss`), with `teacher` sharded or whole.

    Args:
        teacher: the frozen teacher (shard it with `shard_model_` when it does not fit on one rank).
        config: a `DistillationConfig`; `augment` and `cache_teacher` are refused in one line.
        student: the student (sharded or whole); needed with `hidden_weight > 0` for the layer map and the
            projections' widths.

    Example:
        ```python
        loss_fn = distillation_loss(teacher, DistillationConfig(hidden_weight=1.0), student=model)
        train_sharded(model, batches, callbacks, output_dir="out", loss_fn=loss_fn)
        ```
    """
    config = config or DistillationConfig()
    if config.augment != "none" or config.cache_teacher:
        raise ValueError(
            f"distillation augment={config.augment!r}, cache_teacher={config.cache_teacher}: train_sharded does not "
            "augment or cache; set augment: none, cache_teacher: false (or train with DistillationTrainer)"
        )
    if config.hidden_weight > 0 and student is None:
        raise ValueError(
            f"distillation hidden_weight={config.hidden_weight} needs the student for its layer map and projections: "
            "distillation_loss(teacher, config, student=model)"
        )
    return DistillationLoss(teacher, config, student)
