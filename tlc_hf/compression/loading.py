"""Save a compressed model with its compression config, and load any tlc_hf-compressed model back."""

from __future__ import annotations

import logging
import os
import shutil

import torch
import transformers
from transformers import AutoConfig, PreTrainedModel

from ..data.cache import atomic_directory
from .base import CompressionConfig, read_compression_config, write_compression_config
from .storage import SPARSE_WEIGHTS_NAME, load_sparse_state_dict, save_sparse_state_dict

logger = logging.getLogger(__name__)

STORAGE_KINDS = ("dense", "sparse")


def save_compressed(
    model: PreTrainedModel,
    save_directory: str | os.PathLike,
    tokenizer=None,
    storage: str = "dense",
    overwrite: bool = False,
    extra: dict | None = None,
) -> str:
    """`save_pretrained` plus `tlc_compression.json` (the methods applied, enough to rebuild the shapes).

    `storage="sparse"` writes pruned weights as bitmask + values (`sparse_model.safetensors`) instead of
    `model.safetensors`; load it with `load_compressed`. The folder appears only when complete.
    """
    from .quantization.onnx import ONNX_NAME, OnnxModel
    from .quantization.quantize import requantized_for_saving

    if storage not in STORAGE_KINDS:
        raise ValueError(f"storage={storage!r} is not known; choose one of {STORAGE_KINDS}")
    quantized = getattr(model, "hf_quantizer", None) is not None or isinstance(model, OnnxModel)
    if storage == "sparse" and quantized:
        raise ValueError("storage='sparse' is for float weights; a quantized model is saved as its backend stores it")
    with atomic_directory(save_directory, overwrite=overwrite) as tmp:
        if isinstance(model, OnnxModel):
            shutil.copyfile(model.path, os.path.join(tmp, ONNX_NAME))
            model.config.save_pretrained(str(tmp))
        else:
            requantized_for_saving(model).save_pretrained(str(tmp))
        if storage == "sparse":
            for name in os.listdir(tmp):
                if name.startswith("model") and name.endswith((".safetensors", ".safetensors.index.json")):
                    os.remove(os.path.join(tmp, name))
            save_sparse_state_dict(model.state_dict(), os.path.join(tmp, SPARSE_WEIGHTS_NAME))
        write_compression_config(model, tmp, extra={"storage": storage, **(extra or {})})
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
    return str(save_directory)


def load_compressed(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | None = None,
    device: str | torch.device | None = None,
) -> PreTrainedModel:
    """Load a model saved by `save_compressed` (structured, sparse-stored, ...) from a folder or a Hub id.

    Only transformers' own model classes are built (no remote code) and weights come from safetensors only.
    A folder without `tlc_compression.json` loads like `from_pretrained`.
    """
    directory = _local_directory(name_or_path, revision, token)
    compression = read_compression_config(directory)
    records = (compression or {}).get("methods", [])
    backends = {r.get("backend") for r in records if r.get("method") == "quantization"}
    if "onnxruntime" in backends:
        from .quantization.onnx import OnnxModel

        return OnnxModel.from_pretrained(directory)
    config = AutoConfig.from_pretrained(directory)
    model_class = _model_class(config)
    if compression is None:
        return model_class.from_pretrained(directory, use_safetensors=True).to(device or "cpu").eval()
    if backends & {"torchao", "bitsandbytes"}:
        model = model_class.from_pretrained(directory, device_map=str(device or "cpu"))
        model.tlc_compression = records
        return _with_adapter(model, directory).eval()
    model = model_class(config)
    for record in records:
        config_class = type(CompressionConfig.from_dict(record))
        restore = getattr(config_class, "restore_structure", None)
        if restore is not None:
            restore(model, record)
    state = _read_weights(directory)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [key for key in missing if key not in tied and not _is_tied(model, key)]
    if missing or unexpected:
        raise ValueError(
            f"{directory}: weights do not fit the rebuilt model; missing {missing}, unexpected {unexpected}"
        )
    model.tlc_compression = records
    return model.to(device or "cpu").eval()


def _with_adapter(model, directory: str):
    """Apply a LoRA adapter saved beside the weights (kept unmerged where the backend holds the weights)."""
    from .lora import ADAPTER_DIR

    adapter = os.path.join(directory, ADAPTER_DIR)
    if not os.path.isdir(adapter):
        return model
    from peft import PeftModel

    history = getattr(model, "tlc_compression", [])
    wrapped = PeftModel.from_pretrained(model, adapter)
    wrapped.tlc_compression = history
    return wrapped


def _is_tied(model: PreTrainedModel, key: str) -> bool:
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    inputs = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if output is None or inputs is None or output.weight is not inputs.weight:
        return False
    return key.endswith(("lm_head.weight", "decoder.weight")) or key.endswith("embed_tokens.weight")


def _local_directory(name_or_path, revision, token) -> str:
    if os.path.isdir(name_or_path):
        return str(name_or_path)
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id=str(name_or_path), revision=revision, token=token)


def _model_class(config) -> type[PreTrainedModel]:
    names = getattr(config, "architectures", None) or []
    for name in names:
        model_class = getattr(transformers, name, None)
        if isinstance(model_class, type) and issubclass(model_class, PreTrainedModel):
            return model_class
    raise ValueError(f"config.architectures={names!r} names no transformers model class; remote code is not loaded")


def _read_weights(directory: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    sparse = os.path.join(directory, SPARSE_WEIGHTS_NAME)
    if os.path.exists(sparse):
        return load_sparse_state_dict(sparse)
    shards = sorted(n for n in os.listdir(directory) if n.startswith("model") and n.endswith(".safetensors"))
    if not shards:
        raise FileNotFoundError(f"{directory} has no safetensors weights (other formats are not loaded)")
    state = {}
    for shard in shards:
        state.update(load_file(os.path.join(directory, shard)))
    return state
