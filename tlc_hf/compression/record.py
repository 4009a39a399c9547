"""A model's compression record, kept in its config, so every Hugging Face save path keeps it.

`model.config.tlc_compression` holds `{"format_version", "methods": [one dict per method applied, in order],
...}`: `save_pretrained`, `Trainer.save_model`, checkpoints and `push_to_hub` write it into `config.json`,
and `from_pretrained` (after `import tlc_hf`) rebuilds the compressed shapes from it.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

CONFIG_ATTRIBUTE = "tlc_compression"
FORMAT_VERSION = 2


def _config(model):
    config = getattr(model, "config", None)
    if config is None:
        raise TypeError(f"{type(model).__name__} has no .config; tlc_hf compresses transformers models")
    return config


def compression_record(config) -> dict:
    """The record stored in `config` (empty when the model was never compressed)."""
    record = getattr(config, CONFIG_ATTRIBUTE, None)
    if not isinstance(record, dict):
        return {"format_version": FORMAT_VERSION, "methods": []}
    if record.get("format_version", 1) > FORMAT_VERSION:
        warnings.warn(
            f"the compression record was written by a newer tlc_hf ({record['format_version']})", stacklevel=2
        )
    return record


def compression_history(model) -> list[dict]:
    """The methods applied to `model`, in order (dicts as written by each config's `to_dict`)."""
    config = getattr(model, "config", None)
    return list(compression_record(config).get("methods", [])) if config is not None else []


def set_compression_history(model, methods: list[dict], **extra: Any) -> None:
    """Replace the methods in `model`'s record (and set or update `extra` top-level fields)."""
    config = _config(model)
    record = copy.deepcopy(compression_record(config))
    record.update(format_version=FORMAT_VERSION, methods=[dict(m) for m in methods], **extra)
    setattr(config, CONFIG_ATTRIBUTE, record)


def record_compression(model, config, **outputs: Any) -> None:
    """Append one method's record to `model`'s compression history: the config (a CompressionConfig or a dict:
    what was asked) and `outputs` (what applying it produced, e.g. structured pruning's `layout`)."""
    entry = {**(config.to_dict() if hasattr(config, "to_dict") else dict(config)), **outputs}
    set_compression_history(model, [*compression_history(model), entry])
