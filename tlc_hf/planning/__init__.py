"""The planner: which model to train for a wall-clock budget, and how to compress it for a deployment target.

Modules, one concept each: `units` (the target's size and latency in words), `request` (the question, checked),
`candidates` (the sizes and their step time), `quality` (the sweep and its extrapolation, `fit`), `shape` /
`size` / `latency` (what a recipe leaves, its bytes, its measured speed), `recipes` (the cheapest that fits),
`recommend`, `result`, `report`, and `plan` (the steps in order).
"""

from .request import PlanRequest
from .shape import Deployment, compressed_config, deployment_of
from .size import deployed_weight_bytes
from .units import parse_latency, parse_size

__all__ = [
    "Deployment",
    "PlanRequest",
    "compressed_config",
    "deployed_weight_bytes",
    "deployment_of",
    "parse_latency",
    "parse_size",
]
