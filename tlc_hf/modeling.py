"""Resolve a model description (a named config, a config file, a checkpoint) and build it for a task."""

from __future__ import annotations

import json
import os

from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from .scaling.configs import shipped_config_dict
from .tasks import SEQ2SEQ_MODEL_TYPES, TASKS, check_task  # noqa: F401  (re-exported)

TINY_CONFIG_NAMES = ("bert-tiny", "roberta-tiny", "t5-tiny", "mt5-tiny")


def resolve_config(name: str | os.PathLike | PretrainedConfig, **overrides) -> PretrainedConfig:
    """A config from: a config object, a tiny name (`"roberta-tiny"`), a shipped name (`"roberta-large"`,
    `"google/mt5-base"`; see `tlc_hf.scaling.SHIPPED_CONFIGS`), a `config.json` file, or any name
    `AutoConfig.from_pretrained` takes (a local folder, or a Hub id with network). `overrides` set attributes."""
    if isinstance(name, PretrainedConfig):
        config = name.__class__.from_dict(name.to_dict())
    elif str(name) in TINY_CONFIG_NAMES:
        from .testing import tiny_config

        config = tiny_config(str(name).removesuffix("-tiny"))
    elif shipped_config_dict(str(name)) is not None:
        data = shipped_config_dict(str(name))
        config = _config_from_dict(data)
    elif os.path.isfile(name):
        with open(name) as f:
            try:
                data = json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(
                    f"config file {name} is not valid JSON ({' '.join(str(err).split())}); give a transformers "
                    "config.json, a shipped or tiny name, or a Hub id"
                ) from err
        if "model_type" not in data:
            raise ValueError(f"config file {name} has no 'model_type'; it is not a transformers config")
        config = _config_from_dict(data)
    else:
        from .compression.loading import check_model_location

        check_model_location(name)
        try:
            config = AutoConfig.from_pretrained(str(name))
        except OSError as err:
            from .scaling.configs import SHIPPED_CONFIGS

            raise ValueError(
                f"config {str(name)!r} is not a tiny name {list(TINY_CONFIG_NAMES)}, not a shipped config "
                f"{list(SHIPPED_CONFIGS)}, not a config.json or a model folder, and could not be fetched from "
                "the Hub (offline, or no such repo)"
            ) from err
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def _config_from_dict(data: dict) -> PretrainedConfig:
    config = AutoConfig.for_model(**data)
    # transformers v5 forces tied (m)T5 embeddings; remember what the checkpoint declares.
    config._declared_tie_word_embeddings = data.get("tie_word_embeddings")
    return config


def build_model(config: PretrainedConfig, task: str, num_labels: int | None = None) -> PreTrainedModel:
    """A randomly initialized model of `config` for `task` ("mlm", "classification", "seq2seq")."""
    spec = check_task(task, config)
    if task == "classification" and num_labels is not None:
        config.num_labels = num_labels
    return spec.model_class.from_config(config)


def load_model(name_or_path: str, task: str, num_labels: int | None = None, **kwargs) -> PreTrainedModel:
    """Pretrained weights for `task` (safetensors only; remote code only if asked)."""
    config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=kwargs.get("trust_remote_code", False))
    spec = check_task(task, config)
    if task == "classification" and num_labels is not None:
        kwargs["num_labels"] = num_labels
    return spec.model_class.from_pretrained(name_or_path, use_safetensors=True, **kwargs)
