"""The planner: which model to train for a wall-clock budget, and how to compress it for a deployment target."""

from .shape import Deployment, compressed_config, deployment_of
from .size import deployed_weight_bytes, parse_size

__all__ = ["Deployment", "compressed_config", "deployed_weight_bytes", "deployment_of", "parse_size"]
