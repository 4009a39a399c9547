"""What depth pruning is asked to do: `DepthPruningConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..base import CompressionConfig, check_choice

STRATEGIES = ("top", "alternate", "bottom")


@dataclass
class DepthPruningConfig(CompressionConfig):
    """Remove a fraction `layers` of each layer stack (or keep exactly `keep`, 0-based indices).

    strategy: which layers go when `keep` is not given —
      - "top": the last layers (Sajjad et al. 2020 found top-layer dropping the most robust),
      - "alternate": evenly spaced layers stay (DistilBERT-style), the first and the last are kept,
      - "bottom": the first layers (T5 keeps block 0 regardless: it holds the position bias).
    """

    method = "depth"
    outputs = ("kept",)  # recorded: stack -> original indices kept
    layers: float = field(default=0.5, metadata={"help": "Fraction of layers to remove from each stack, in [0, 1)."})
    strategy: str = field(default="top", metadata={"help": f"Which layers to remove: one of {STRATEGIES}."})
    keep: list | None = field(default=None, metadata={"help": "Exact 0-based layer indices to keep (every stack)."})

    def validate(self) -> None:
        if not isinstance(self.layers, (int, float)) or isinstance(self.layers, bool) or not 0 <= self.layers < 1:
            raise ValueError(f"layers={self.layers!r} must be a fraction in [0, 1): a stack keeps at least one layer")
        check_choice("strategy", self.strategy, STRATEGIES)
        if self.keep is not None:
            if not isinstance(self.keep, (list, tuple)) or not self.keep:
                raise ValueError(f"keep={self.keep!r} must be a non-empty list of layer indices")
            if any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in self.keep):
                raise ValueError(f"keep={self.keep!r} must hold non-negative int layer indices")
            if len(set(self.keep)) != len(self.keep):
                raise ValueError(f"keep={self.keep!r} names a layer twice")
