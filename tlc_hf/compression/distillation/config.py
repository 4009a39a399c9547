"""What distillation is asked to do: `DistillationConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..base import CompressionConfig, check_choice, check_fraction

AUGMENTATIONS = ("none", "mask", "replace")


@dataclass
class DistillationConfig(CompressionConfig):
    """How the student learns from the teacher.

    `augment` perturbs the inputs both models see (a fraction `augment_prob` of non-special tokens becomes
    the mask token, or a random token) so the student learns the teacher's answers on more varied inputs,
    a simple form of the KD data augmentation of Movva et al. (2022). `cache_teacher` keeps the teacher's
    classification logits per distinct input, so repeated epochs skip the teacher's forward pass.
    """

    method = "distillation"
    alpha: float = field(default=0.5, metadata={"help": "Weight of the task loss; 1 - alpha goes to the KL term."})
    temperature: float = field(default=2.0, metadata={"help": "Softmax temperature T (> 0)."})
    hidden_weight: float = field(default=0.0, metadata={"help": "Weight of the hidden-state MSE (0 = off)."})
    layer_map: list | None = field(default=None, metadata={"help": "[[student_layer, teacher_layer], ...]."})
    augment: str = field(default="none", metadata={"help": "none, mask or replace."})
    augment_prob: float = field(default=0.1, metadata={"help": "Fraction of tokens perturbed by augment."})
    cache_teacher: bool = field(default=False, metadata={"help": "Cache teacher logits (classification)."})

    def validate(self) -> None:
        check_fraction("alpha", self.alpha, high_open=False)
        if not isinstance(self.temperature, (int, float)) or self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature!r} must be > 0")
        weight = self.hidden_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"hidden_weight={weight!r} must be a number >= 0 (0 turns the hidden-state loss off)")
        check_choice("augment", self.augment, AUGMENTATIONS)
        check_fraction("augment_prob", self.augment_prob)
        if self.cache_teacher and self.augment != "none":
            raise ValueError("cache_teacher=True cannot be combined with augment: augmented inputs differ each time")
