"""Choosing the model size for a budget: depth/width families, parameter breakdowns, equal-time sweeps."""

from .breakdown import PARTS, param_breakdown
from .configs import SHIPPED_CONFIGS, shipped_config_dict
from .scale import SCALABLE_FAMILIES, scale_config

__all__ = ["PARTS", "SCALABLE_FAMILIES", "SHIPPED_CONFIGS", "param_breakdown", "scale_config", "shipped_config_dict"]
