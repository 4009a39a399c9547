from __future__ import annotations

from dataclasses import dataclass, field

from ..base import ScheduleConfig, check_choice, check_fraction, register_config

IMPORTANCE = ("magnitude", "gradient")


@register_config
@dataclass
class StructuredPruningConfig(ScheduleConfig):
    """Remove whole attention heads and FFN neurons (`heads`, `ffn`: fractions to remove, in [0, 1)).

    Pruning records two outputs beside these fields: `layout`, the shapes needed to rebuild the model on load,
    and `native`, whether the model config alone describes them (then plain `from_pretrained` loads the model).
    """

    method = "structured"
    outputs = ("layout", "native")
    heads: float = field(default=0.5, metadata={"help": "Fraction of attention heads to remove, in [0, 1)."})
    ffn: float = field(default=0.5, metadata={"help": "Fraction of FFN neurons to remove, in [0, 1)."})
    importance: str = field(default="magnitude", metadata={"help": "magnitude or gradient (Michel et al. 2019)."})
    uniform: bool = field(default=False, metadata={"help": "Same count per layer (and native reload where possible)."})
    num_batches: int = field(default=8, metadata={"help": "Batches for gradient importance."})
    steps: int = field(default=4, metadata={"help": "Callback: prune in this many rounds between start and end."})

    def validate(self) -> None:
        super().validate()
        for name in ("heads", "ffn"):
            value = getattr(self, name)
            if value == 1 or value == 1.0:
                raise ValueError(
                    f"{name}={value!r} would remove every {'head' if name == 'heads' else 'neuron'}; "
                    "a layer keeps at least one. Use a fraction in [0, 1)."
                )
            check_fraction(name, value)
        check_choice("importance", self.importance, IMPORTANCE)
        if not isinstance(self.num_batches, int) or self.num_batches < 1:
            raise ValueError(f"num_batches={self.num_batches!r} must be a positive int")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps={self.steps!r} must be a positive int")
