"""Hidden-state distillation: which student layer learns which teacher layer, the learned projections when the
widths differ, and the mean squared error between them.

The projections are a plain module replicated on every rank, outside the (DDP- or FSDP2-) wrapped student: under
several ranks their gradients are averaged over the data-parallel ranks (`average_gradients_`) before each
optimizer step, as DDP and FSDP2 average the student's, so every rank keeps the same projections. They start the
same on every rank without seeding by hand: `broadcast_parameters_` copies rank 0's before the first step.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..depth import teacher_layer_of
from ..sharding import unwrap_model


def default_layer_map(student_layers: int, teacher_layers: int) -> list[list[int]]:
    """Student layer i (1-based, 0 = embeddings) -> the teacher layer at the same relative depth.

    Args:
        student_layers: the student's number of layers.
        teacher_layers: the teacher's number of layers.

    Example:
        ```python
        default_layer_map(3, 6)  # [[1, 2], [2, 4], [3, 6]]
        ```
    """
    return [[i, round(i * teacher_layers / student_layers)] for i in range(1, student_layers + 1)]


def _layer_map_for(student, student_layers: int, teacher_layers: int) -> list[list[int]]:
    """A depth-pruned student's layers map to the teacher layers they were cut from; otherwise by depth."""
    origins = teacher_layer_of(student)
    if origins is not None and len(origins) == student_layers and max(origins) <= teacher_layers:
        return [[i, t] for i, t in enumerate(origins, start=1)]
    return default_layer_map(student_layers, teacher_layers)


def hidden_states(outputs) -> tuple:
    """The hidden states distillation compares: an encoder's, or an encoder-decoder's encoder states.

    Args:
        outputs: a model's output run with `output_hidden_states=True`.

    Example:
        ```python
        states = hidden_states(model(**batch, output_hidden_states=True))  # (embeddings, layer 1, ...)
        ```
    """
    found = outputs.get("hidden_states")
    return found if found is not None else outputs.encoder_hidden_states


class HiddenStateLoss(nn.Module):
    """Mean over the mapped layers of MSE(projection(student_hidden[s]), teacher_hidden[t]).

    Args:
        student: the student model (whole, DDP-wrapped, or sharded with FSDP2: only its config is read).
        teacher: the teacher model (whole, wrapped or sharded; its config is read).
        layer_map: [[student_layer, teacher_layer], ...] (0 = embeddings); default: a depth-pruned student's
            origins, else the same relative depth.

    Example:
        ```python
        loss = HiddenStateLoss(student, teacher)(student(**batch, output_hidden_states=True), teacher_hidden)
        ```
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, layer_map: list | None = None):
        super().__init__()
        student, teacher = unwrap_model(student), unwrap_model(teacher)  # DDP's wrapper has no config
        student_cfg, teacher_cfg = student.config, teacher.config
        s_layers = getattr(student_cfg, "num_hidden_layers", None) or student_cfg.num_layers
        t_layers = getattr(teacher_cfg, "num_hidden_layers", None) or teacher_cfg.num_layers
        self.layer_map = layer_map or _layer_map_for(student, s_layers, t_layers)
        s_width = getattr(student_cfg, "hidden_size", None) or student_cfg.d_model
        t_width = getattr(teacher_cfg, "hidden_size", None) or teacher_cfg.d_model
        self.projections = nn.ModuleList(
            nn.Identity() if s_width == t_width else nn.Linear(s_width, t_width) for _ in self.layer_map
        )

    def forward(self, student_hidden, teacher_hidden) -> torch.Tensor:
        return sum(
            F.mse_loss(projection(student_hidden[s]), teacher_hidden[t])
            for projection, (s, t) in zip(self.projections, self.layer_map, strict=True)
        ) / len(self.layer_map)


def average_gradients_(module: nn.Module, group=None) -> None:
    """Average the gradients of a module replicated on every rank over `group` (default: all ranks), in place,
    as DDP and FSDP2 average the model's; nothing without a process group of several ranks. A collective.

    Args:
        module: the replicated module (e.g. `HiddenStateLoss`'s projections), after backward.
        group: the data-parallel process group; None for all ranks.

    Example:
        ```python
        loss.backward()
        average_gradients_(hidden_loss.projections)
        optimizer.step()
        ```
    """
    if not dist.is_initialized() or dist.get_world_size(group) == 1:
        return
    world = dist.get_world_size(group)
    for param in module.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad, group=group)
            param.grad.div_(world)


@torch.no_grad()
def broadcast_parameters_(module: nn.Module, group=None) -> None:
    """Copy the parameters of a module replicated on every rank from the first rank of `group` (default: all
    ranks) to the others, in place, as DDP does for the model at wrap time; nothing without a process group of
    several ranks. A collective: call it on every rank before the first step.

    Args:
        module: the replicated module (e.g. `HiddenStateLoss`'s projections).
        group: the data-parallel process group; None for all ranks.

    Example:
        ```python
        broadcast_parameters_(hidden_loss.projections)  # every rank starts from rank 0's initialisation
        ```
    """
    if not dist.is_initialized() or dist.get_world_size(group) == 1:
        return
    source = dist.get_global_rank(group, 0) if group is not None else 0
    for param in module.parameters():
        dist.broadcast(param.data, src=source, group=group)
