"""Config facts of well-known checkpoints, shipped with the package so sizes can be computed offline."""

from __future__ import annotations

import json
from importlib import resources

SHIPPED_CONFIGS = (
    "bert-base-uncased",
    "roberta-base",
    "roberta-large",
    "xlm-roberta-base",
    "xlm-roberta-large",
    "t5-small",
    "t5-base",
    "t5-large",
    "t5-3b",
    "t5-11b",
    "mt5-small",
    "mt5-base",
    "mt5-large",
    "mt5-xl",
    "mt5-xxl",
)


def shipped_config_dict(name: str) -> dict | None:
    """The `config.json` facts of `name` ("roberta-large", or a Hub id such as "google/mt5-base"), or None."""
    short = str(name).rstrip("/").rsplit("/", 1)[-1]
    if short not in SHIPPED_CONFIGS:
        return None
    with resources.files(__package__).joinpath("configs", f"{short}.json").open() as f:
        return json.load(f)
