from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from ..base import ScheduleConfig, TargetSelection, check_choice, register_config

BACKENDS = ("simulated", "torchao", "onnxruntime", "openvino", "bitsandbytes")
AUTO = "auto"  # resolved when the config is built: the backend measured fastest on this machine's device
GRANULARITIES = ("per_channel", "per_tensor")
BNB_4BIT_TYPES = ("nf4", "fp4")
_BACKEND_PACKAGE = {
    "torchao": ("torchao", "torchao"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "openvino": ("openvino", "openvino"),
    "bitsandbytes": ("bitsandbytes", "bitsandbytes"),
}


@register_config
@dataclass
class QuantizationConfig(ScheduleConfig, TargetSelection):
    """Post-training quantization (`tlc_hf.quantize`), and the quantizer QAT / Quant-Noise train with.

    backend:
      - "simulated": k-bit fake quantization (2-8 bits, per-channel or per-tensor, symmetric or not) of the
        target weights, in place. For accuracy-vs-bits curves only: no speed or size claim.
      - "torchao": int8 weights with dynamic int8 activations (or `weight_only=True`), CPU and GPU; saves
        and reloads with plain `from_pretrained` through transformers' `TorchAoConfig`.
      - "onnxruntime": ONNX export + dynamic int8 for CPU serving (`tlc_hf.OnnxModel` runs it).
      - "openvino": ONNX export converted to OpenVINO, static int8 calibrated on training texts (nncf), for
        CPU serving (`quantize(..., tokenizer=...)`; `tlc_hf.OnnxModel` runs it too).
      - "bitsandbytes": 8-bit, or 4-bit `bnb_4bit_type` nf4/fp4, for memory; heads are skipped.
      - "auto": resolved when the config is built to the backend measured fastest for the device: on CPU
        the faster of "onnxruntime" and "openvino" where both are installed, measured once per CPU and cached
        (the real MiniLM at batch 8x128 on 2 cores: ONNX Runtime 2.9x fp32, where torchao int8 gave 1.1x and
        bitsandbytes 0.9x, slower than fp32; `benchmarks/real_model_frontier.py`, `benchmarks/serving.py`),
        on CUDA "torchao".
    """

    method = "quantization"
    outputs = ("convert_to",)  # recorded by QAT: the backend the simulated weights are converted to
    backend: str = field(default="simulated", metadata={"help": f"One of {BACKENDS}."})
    bits: int = field(default=8, metadata={"help": "Weight bits: 2-8 for simulated, 8 (or 4 for bitsandbytes)."})
    granularity: str = field(
        default="per_channel", metadata={"help": "per_channel or per_tensor (simulated, QAT, onnxruntime)."}
    )
    symmetric: bool = field(default=True, metadata={"help": "Symmetric (zero-point 0) or asymmetric ranges."})
    weight_only: bool = field(default=False, metadata={"help": "torchao: int8 weights, activations in float."})
    bnb_4bit_type: str = field(default="nf4", metadata={"help": "bitsandbytes 4-bit type: nf4 or fp4."})
    compile: bool = field(default=False, metadata={"help": "torchao: compile the forward pass (torch.compile)."})
    qat: bool = field(default=False, metadata={"help": "In a recipe: train with fake quantization, then convert."})
    noise_rate: float = field(default=0.1, metadata={"help": "Quant-Noise: fraction of weight blocks quantized."})
    block_size: int = field(default=8, metadata={"help": "Quant-Noise: weights per block (along the input)."})

    def validate(self) -> None:
        super().validate()
        if self.backend == AUTO:
            self.backend = fastest_backend()
        check_choice("backend", self.backend, BACKENDS + (AUTO,))
        check_choice("granularity", self.granularity, GRANULARITIES)
        check_choice("bnb_4bit_type", self.bnb_4bit_type, BNB_4BIT_TYPES)
        if not isinstance(self.bits, int) or isinstance(self.bits, bool) or not 2 <= self.bits <= 8:
            raise ValueError(f"bits={self.bits!r} must be an int from 2 to 8")
        allowed = {
            "simulated": range(2, 9),
            "torchao": (8,),
            "onnxruntime": (8,),
            "openvino": (8,),
            "bitsandbytes": (4, 8),
        }
        if self.bits not in allowed[self.backend]:
            why = {
                "torchao": "torchao's int4 kernels run on CUDA GPUs only, not on CPU; use bitsandbytes nf4 "
                "(bits=4) or the simulated backend for 4-bit curves",
                "onnxruntime": "ONNX Runtime's dynamic quantization is int8",
                "openvino": "OpenVINO's static quantization here is int8",
                "bitsandbytes": "bitsandbytes has 8-bit and 4-bit (nf4/fp4)",
            }[self.backend]
            raise ValueError(f"bits={self.bits} is not available with backend={self.backend!r}: {why}")
        if not 0.0 <= self.noise_rate <= 1.0:
            raise ValueError(f"noise_rate={self.noise_rate!r} must lie in [0, 1]")
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise ValueError(f"block_size={self.block_size!r} must be a positive int")

    def require_backend(self) -> None:
        """Raise ImportError naming the extra to install if the backend's packages are missing."""
        if self.backend in _BACKEND_PACKAGE:
            exporter = ("onnx", "onnxscript") if self.backend in ("onnxruntime", "openvino") else ()
            for module in (
                _BACKEND_PACKAGE[self.backend][:1] + exporter + (("nncf",) if self.backend == "openvino" else ())
            ):
                if importlib.util.find_spec(module) is None:
                    install = {
                        "torchao": "pip install 'tlc_hf[torchao]'",
                        "onnxruntime": "pip install 'tlc_hf[onnx]'",
                        "openvino": "pip install 'tlc_hf[onnx,openvino]'",
                        "bitsandbytes": "pip install bitsandbytes",
                    }[self.backend]
                    raise ImportError(f"backend={self.backend!r} needs the package {module!r}: {install}")


def fastest_backend() -> str:
    """The int8 backend to use when none is named: torchao on a CUDA machine; on CPU the fastest installed
    exported-graph runtime (ONNX Runtime, OpenVINO), measured once per CPU and cached (`choice.py`; torchao's
    and bitsandbytes' CPU int8 kernels measured no faster than fp32), else torchao."""
    import torch

    if torch.cuda.is_available():
        return "torchao"
    installed = [
        backend
        for backend, modules in (("onnxruntime", ("onnxruntime", "onnxscript")), ("openvino", ("openvino", "nncf")))
        if all(importlib.util.find_spec(m) is not None for m in (*modules, "onnx"))
    ]
    if not installed:
        return "torchao"
    from .choice import fastest_cpu_runtime

    return fastest_cpu_runtime(installed)
