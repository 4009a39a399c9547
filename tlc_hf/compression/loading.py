"""Save a compressed model, and load any tlc_hf-compressed model back.

The compression record and the pruned shapes live in `config.json` (see `record.py` and
`hf_integration.py`), so plain `save_pretrained` / `from_pretrained` (after `import tlc_hf`) already
round-trip every method. `save_compressed` adds what plain saving cannot choose for you: sparse storage,
an atomic folder, the tokenizer; `load_compressed` also loads ONNX exports and saved LoRA adapters.
"""

from __future__ import annotations

import json
import logging
import os

import torch
import transformers
from transformers import AutoConfig, PreTrainedModel

from ..data.cache import atomic_directory
from .hf_integration import SPARSE_QUANT_METHOD, install
from .record import compression_history, set_compression_history
from .storage import save_sparse_state_dict

logger = logging.getLogger(__name__)

STORAGE_KINDS = ("dense", "sparse")
WEIGHTS_NAME = "model.safetensors"


def save_compressed(
    model: PreTrainedModel,
    save_directory: str | os.PathLike,
    tokenizer=None,
    storage: str = "dense",
    overwrite: bool = False,
    extra: dict | None = None,
) -> str:
    """`save_pretrained` into a folder that appears only when complete, with the tokenizer.

    Args:
        model: a (compressed) transformers model, a bitsandbytes / torchao model, or an `OnnxModel`.
        save_directory: the folder to write; refused when it exists and is not empty, unless `overwrite`.
        tokenizer: saved beside the model when given.
        storage: "dense", or "sparse": pruned weights as bitmask + values inside `model.safetensors`
            (1 bit + 32 x density per fp32 weight), which `from_pretrained` reads after `import tlc_hf`.
        extra: top-level fields added to the compression record in `config.json` (e.g. the recipe).

    Example:
        ```python
        prune_magnitude_(model, 0.75)
        save_compressed(model, "out/sparse", tokenizer, storage="sparse")
        AutoModelForSequenceClassification.from_pretrained("out/sparse")  # after `import tlc_hf`
        ```
    """
    from .quantization.onnx_modeling import OnnxModel
    from .quantization.quantize import requantized_for_saving

    if storage not in STORAGE_KINDS:
        raise ValueError(f"storage={storage!r} is not known; choose one of {STORAGE_KINDS}")
    quantized = getattr(model, "hf_quantizer", None) is not None or isinstance(model, OnnxModel)
    if storage == "sparse" and quantized:
        raise ValueError("storage='sparse' is for float weights; a quantized model is saved as its backend stores it")
    set_compression_history(model, compression_history(model), storage=storage, **(extra or {}))
    with atomic_directory(save_directory, overwrite=overwrite) as tmp:
        if isinstance(model, OnnxModel):
            model.save_pretrained(str(tmp))
        else:
            requantized_for_saving(model).save_pretrained(str(tmp))
        if storage == "sparse":
            _rewrite_sparse(model, str(tmp))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
    return str(save_directory)


def _rewrite_sparse(model, directory: str) -> None:
    """Replace the dense weights by sparse storage and mark the config so `from_pretrained` decodes it."""
    for name in os.listdir(directory):
        if name.startswith("model") and name.endswith((".safetensors", ".safetensors.index.json")):
            os.remove(os.path.join(directory, name))
    save_sparse_state_dict(model.state_dict(), os.path.join(directory, WEIGHTS_NAME))
    path = os.path.join(directory, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["quantization_config"] = {"quant_method": SPARSE_QUANT_METHOD}
    with open(path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)


def load_compressed(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | None = None,
    device: str | torch.device | None = None,
):
    """Load any tlc_hf output (pruned, sparse-stored, quantized, ONNX, with a LoRA adapter) from a folder or
    a Hub id, as the class named in its config.

    Only transformers' own model classes are built (no remote code) and weights come from safetensors
    only. For a folder without ONNX or adapter this is exactly `from_pretrained` after `import tlc_hf`.
    """
    from .quantization.onnx_modeling import OnnxModel, is_onnx_export

    install()
    directory = model_folder(name_or_path, revision=revision, token=token)
    config = AutoConfig.from_pretrained(directory)
    if is_onnx_export(config):
        return OnnxModel.from_pretrained(directory, config=config)
    model_class = _model_class(config)
    try:
        model = model_class.from_pretrained(directory, use_safetensors=True, device_map=str(device or "cpu"))
    except Exception as err:
        if is_safetensors_error(err):
            raise ValueError(unreadable_weights_message(directory, err)) from err
        raise
    return _with_adapter(model, directory).eval()


def is_safetensors_error(err: BaseException) -> bool:
    """A `safetensors` parse error (raised from inside the library, with no file name)."""
    return type(err).__name__ == "SafetensorError" or "safetensors_rust" in type(err).__module__


def unreadable_weights_message(directory: str | os.PathLike, err: BaseException) -> str:
    """One line naming the weights file(s) of `directory` that safetensors could not read."""
    names = sorted(f for f in os.listdir(directory) if f.endswith(".safetensors")) if os.path.isdir(directory) else []
    files = ", ".join(os.path.join(str(directory), name) for name in names) or str(directory)
    return (
        f"weights file {files} is not readable safetensors ({' '.join(str(err).split())}); "
        "it is truncated or not a safetensors file: re-save the model with save_pretrained"
    )


def _with_adapter(model, directory: str):
    """Apply a LoRA adapter saved beside the weights (kept unmerged where the backend holds the weights)."""
    from .lora import ADAPTER_DIR

    adapter = os.path.join(directory, ADAPTER_DIR)
    if not os.path.isdir(adapter):
        return model
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter)


def model_folder(name_or_path: str | os.PathLike, revision: str | None = None, token: str | None = None) -> str:
    """`name_or_path` if it is a folder, else the downloaded snapshot of that Hub id at `revision` (a one-line
    error when the Hub cannot be reached or has no such model).

    Example:
        ```python
        folder = model_folder("me/tiny-pruned", revision="main")  # the files as on the Hub, cached
        ```
    """
    if os.path.isdir(name_or_path):
        return str(name_or_path)
    check_model_location(name_or_path)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    from ..hub.errors import describe_hub_error, hub_errors

    try:
        return snapshot_download(repo_id=str(name_or_path), revision=revision, token=token)
    except (*hub_errors(), LocalEntryNotFoundError) as err:
        cause = err.__cause__ if isinstance(err, LocalEntryNotFoundError) and err.__cause__ is not None else err
        kind, reason = describe_hub_error(cause, str(name_or_path))
        if isinstance(err, LocalEntryNotFoundError):
            reason += ", and it is not in the local cache"
        raise kind(f"could not load {name_or_path}{f' at revision {revision}' if revision else ''}: {reason}") from err


def _model_class(config) -> type[PreTrainedModel]:
    names = getattr(config, "architectures", None) or []
    for name in names:
        model_class = getattr(transformers, name, None)
        if isinstance(model_class, type) and issubclass(model_class, PreTrainedModel):
            return model_class
    raise ValueError(f"config.architectures={names!r} names no transformers model class; remote code is not loaded")


def check_model_location(name_or_path) -> None:
    """A model location is an existing folder or a Hub id ("org/name"); say which it is not."""
    name = str(name_or_path)
    if os.path.isdir(name):
        if not os.path.isfile(os.path.join(name, "config.json")):
            checkpoints = sorted(f for f in os.listdir(name) if f.startswith("checkpoint-"))
            hint = f"; its checkpoints ({', '.join(checkpoints[-2:])}) are model folders" if checkpoints else ""
            raise FileNotFoundError(
                f"model folder {name!r} has no config.json: no finished model was saved there (is training still "
                f"running, or was it stopped?){hint}"
            )
        return
    if os.path.exists(name):
        raise NotADirectoryError(f"model location {name!r} is a file; give the model's folder (with config.json)")
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name
    if looks_local or not name:
        raise FileNotFoundError(f"model folder {name!r} does not exist (and it is not a Hub id like 'org/name')")
