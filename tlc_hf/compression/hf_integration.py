"""How plain transformers loading rebuilds tlc_hf-compressed models (installed by `import tlc_hf`).

Three pieces, each where transformers has room for it:

- **Structure is architecture**, so it lives in `config.json` (`config.tlc_compression`) and is applied
  when a model is *built* from its config: every `PreTrainedModel.post_init` (the last step of each
  model's `__init__`) first lets each recorded method `restore` its shapes. So `from_pretrained`,
  `from_config`, `pipeline`, Trainer checkpoints and any quantizer (torchao, bitsandbytes) see the pruned
  shapes before weights are loaded or quantized. The quantization slot of the config stays free for them.
- **Sparse storage is a serialization format**: a checkpoint whose `model.safetensors` holds bitmask +
  values says `quantization_config: {"quant_method": "tlc_sparse"}`; the registered `TlcSparseHfQuantizer`
  fills the dense weights after loading and then removes itself, leaving a plain float model.
- **An ONNX export is another runtime**, not weights for a torch module: `AutoModelFor*.from_pretrained` (and so
  `pipeline`) first reads the location's `config.json` (folder, cache or Hub, through `cached_file`); when it
  records an onnxruntime export, the `OnnxModelFor*` class of the export's head loads it instead.
"""

from __future__ import annotations

import functools
import logging
import re

logger = logging.getLogger(__name__)

SPARSE_QUANT_METHOD = "tlc_sparse"
_INSTALLED = False


def restore_structure_(model) -> None:
    """Let every method recorded in `model.config` rebuild its shapes on `model` (idempotent)."""
    from .base import get_method
    from .record import compression_history

    for record in compression_history(model):
        method = get_method(record.get("method"))
        if method.restore is not None:
            method.restore(model, record)


def install() -> None:
    """Hook tlc_hf into transformers (once): structure restore on build, the sparse-storage quantizer, ONNX
    exports through the Auto classes."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    from transformers import PreTrainedModel

    original = PreTrainedModel.post_init

    @functools.wraps(original)
    def post_init(self, *args, **kwargs):
        if getattr(getattr(self, "config", None), "tlc_compression", None):
            restore_structure_(self)
        return original(self, *args, **kwargs)

    PreTrainedModel.post_init = post_init
    _register_sparse_quantizer()
    _route_onnx_exports()


def _route_onnx_exports() -> None:
    """Wrap `from_pretrained` of the Auto classes: `_BaseAutoModelClass`'s (which Auto classes created later
    copy) and the copies the existing Auto classes already hold; classes with their own loader are left alone."""
    from transformers.models.auto.auto_factory import _BaseAutoModelClass

    code = _BaseAutoModelClass.from_pretrained.__func__.__code__
    pending = [_BaseAutoModelClass]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        method = cls.__dict__.get("from_pretrained")
        if isinstance(method, classmethod) and method.__func__.__code__ is code:
            cls.from_pretrained = classmethod(_onnx_first(method.__func__))


def _onnx_first(original):
    @functools.wraps(original)
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        if not model_args:
            from .quantization.onnx_modeling import from_pretrained_for_auto

            onnx_model = from_pretrained_for_auto(cls.__name__, pretrained_model_name_or_path, kwargs)
            if onnx_model is not None:
                return onnx_model
        return original(cls, pretrained_model_name_or_path, *model_args, **kwargs)

    return from_pretrained


def _register_sparse_quantizer() -> None:
    from transformers.quantizers.auto import (
        AUTO_QUANTIZATION_CONFIG_MAPPING,
        register_quantization_config,
        register_quantizer,
    )
    from transformers.quantizers.base import HfQuantizer
    from transformers.utils.quantization_config import QuantizationConfigMixin

    if SPARSE_QUANT_METHOD in AUTO_QUANTIZATION_CONFIG_MAPPING:
        return

    @register_quantization_config(SPARSE_QUANT_METHOD)
    class TlcSparseConfig(QuantizationConfigMixin):
        """Marks a checkpoint whose pruned weights are stored as bitmask + values (tlc_hf sparse storage)."""

        def __init__(self, **kwargs):
            self.quant_method = SPARSE_QUANT_METHOD

        def to_dict(self):
            return {"quant_method": SPARSE_QUANT_METHOD}

    @register_quantizer(SPARSE_QUANT_METHOD)
    class TlcSparseHfQuantizer(HfQuantizer):
        """Loads sparse-stored weights into the dense model, then leaves it a plain float model."""

        requires_calibration = False

        def _process_model_before_weight_loading(self, model, checkpoint_files=None, **kwargs):
            from .storage import sparse_layout

            self.files = [f for f in checkpoint_files or [] if str(f).endswith(".safetensors")]
            names = [name for f in self.files for name in sparse_layout(f)]
            model._keys_to_ignore_on_load_unexpected = set(model._keys_to_ignore_on_load_unexpected or ()) | {
                r"\.__bitmask$",
                r"\.__values$",
            }
            model._keys_to_ignore_on_load_missing = set(model._keys_to_ignore_on_load_missing or ()) | {
                f"^{re.escape(name)}$" for name in names
            }
            return model

        def _process_model_after_weight_loading(self, model, **kwargs):
            import torch

            from .storage import load_sparse_tensors

            params = dict(model.named_parameters(remove_duplicate=False))
            with torch.no_grad():
                for path in self.files:
                    for name, tensor in load_sparse_tensors(path).items():
                        if name not in params:
                            raise ValueError(f"{path}: sparse tensor {name!r} is not a parameter of the model")
                        if tuple(params[name].shape) != tuple(tensor.shape):
                            raise ValueError(
                                f"{path}: sparse tensor {name!r} has shape {list(tensor.shape)}, "
                                f"the model expects {list(params[name].shape)}"
                            )
                        params[name].copy_(tensor.to(params[name].dtype))
            self.remove_quantization_config(model)
            for module in model.modules():
                if hasattr(getattr(module, "config", None), "_is_quantized"):
                    module.config._is_quantized = False
            return model

        def is_serializable(self):
            return True

        @property
        def is_trainable(self):
            return True

    logger.debug("registered %s: %s, %s", SPARSE_QUANT_METHOD, TlcSparseConfig, TlcSparseHfQuantizer)
