"""Exported graphs (ONNX Runtime, OpenVINO) as Hugging Face models: `from_pretrained`, `save_pretrained`,
`pipeline`.

One class per task head, in the shape of optimum's `ORTModelFor*` (optimum-onnx itself needs transformers
< 4.58): `OnnxModelForSequenceClassification.from_pretrained(folder or Hub id)` runs the graph with ONNX
Runtime and returns transformers' output objects, so `pipeline(task, model=...)` accepts it. After
`import tlc_hf`, `AutoModelFor*.from_pretrained` and `pipeline(task, model=<folder or Hub id>)` load an
export as the class of its head (see `hf_integration.py`). Files are resolved with transformers'
`cached_file`, so a Hub id, a revision and the local cache work as for any model. The runtime follows the
export's record: "onnxruntime" runs `model.onnx` in ONNX Runtime, "openvino" runs `openvino_model.xml`
(+ `.bin`) in OpenVINO.
"""

from __future__ import annotations

import os
import shutil

import torch
from transformers import AutoConfig, PretrainedConfig
from transformers.utils import ModelOutput

from .onnx import ONNX_NAME

OPENVINO_NAME = "openvino_model.xml"  # optimum-intel's name; its weights are the `.bin` beside it
EXPORT_FILES = {"onnxruntime": (ONNX_NAME,), "openvino": (OPENVINO_NAME, OPENVINO_NAME[:-4] + ".bin")}

HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only", "force_download", "proxies", "subfolder")
# what `pipeline` and `from_pretrained` callers pass that means nothing to an ONNX Runtime session
_IGNORED_KWARGS = ("_from_pipeline", "_commit_hash", "trust_remote_code", "use_safetensors", "code_revision")


def export_backend(config) -> str | None:
    """The runtime of a tlc_hf export ("onnxruntime", "openvino") that `config` (object or dict) describes."""
    record = config.get("tlc_compression") if isinstance(config, dict) else getattr(config, "tlc_compression", None)
    backends = [
        m.get("backend")
        for m in (record or {}).get("methods", [])
        if m.get("method") == "quantization" and m.get("backend") in EXPORT_FILES
    ]
    return backends[-1] if backends else None


def is_onnx_export(config) -> bool:
    """Whether `config` (object or dict) describes a tlc_hf exported graph (ONNX Runtime or OpenVINO)."""
    return export_backend(config) is not None


class OnnxModel:
    """An exported tlc_hf graph (`model.onnx` run by ONNX Runtime, or `openvino_model.xml` by OpenVINO), with
    the calling convention of a transformers model.

    `from_pretrained` returns the subclass of the exported head (`config.architectures`). Calls take the
    tokenizer's tensors and return transformers' `ModelOutput` (`.logits`, or `.last_hidden_state` for a
    base model); inputs the graph does not take are ignored, `attention_mask` / `token_type_ids` default
    to ones / zeros. By default ONNX Runtime's worker threads do not spin-wait between calls: alone it made
    no measurable difference on the real MiniLM, but spinning threads of one session slowed whatever ran
    next on the same cores (another session, torch) by up to 20%. Pass your own `session_options` (ONNX
    Runtime) to change it; OpenVINO compiles for latency with as many threads as torch uses.

    Example:
        ```python
        model = OnnxModel.from_pretrained("out/int8")  # a folder or a Hub id
        model(**tokenizer(["a fine film"], return_tensors="pt")).logits
        ```
    """

    task: str | None = None  # the pipeline task of the head; None: any head
    auto_class: str | None = None  # the transformers Auto class of that head
    main_input_name = "input_ids"
    device = torch.device("cpu")
    dtype = torch.float32
    input_modalities = ("text",)

    def __init__(self, path: str, config: PretrainedConfig | None = None, session_options=None):
        self.runtime = OpenVinoRuntime(path) if path.endswith(".xml") else OnnxRuntime(path, session_options)
        self.input_names, self.output_names = self.runtime.input_names, self.runtime.output_names
        self.config = config
        self.path = path
        _accept_in_pipelines()

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, *, config: PretrainedConfig | None = None, session_options=None, **kwargs
    ) -> OnnxModel:
        """Load an export from a folder or a Hub id (`revision`, `token`, `cache_dir`, `local_files_only`,
        `subfolder` as for transformers models) as the class of its head.

        Raises ValueError when the export's head is not this class's (a text-classification graph loaded
        as `OnnxModelForMaskedLM`), or for an option that an ONNX Runtime session cannot honour.
        """
        hub = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
        _check_runtime_options(kwargs)
        if config is None:
            config = AutoConfig.from_pretrained(name_or_path, **hub)
        backend = export_backend(config)
        if backend is None:
            raise ValueError(
                f"{name_or_path!s} is not a tlc_hf ONNX export (its config.json records no onnxruntime or openvino "
                "quantization)"
            )
        model_class = class_for_config(config)
        if cls.task is not None and model_class is not cls:
            raise ValueError(
                f"{name_or_path!s} holds a {model_class.task} graph ({', '.join(config.architectures or [])}); "
                f"{cls.__name__} loads {cls.task} exports: use {model_class.__name__} or pipeline("
                f"{model_class.task!r}, ...)"
            )
        return model_class(_resolve(name_or_path, backend, hub), config, session_options)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Write the graph (`model.onnx`, or `openvino_model.xml` + `.bin`) and `config.json` (with the
        compression record and `id2label`) to `save_directory`."""
        os.makedirs(save_directory, exist_ok=True)
        source = os.path.dirname(self.path)
        names = EXPORT_FILES["openvino"] if isinstance(self.runtime, OpenVinoRuntime) else EXPORT_FILES["onnxruntime"]
        stems = [os.path.basename(self.path), os.path.basename(self.path)[:-4] + ".bin"]
        for stem, name in zip(stems, names, strict=False):
            shutil.copyfile(os.path.join(source, stem), os.path.join(save_directory, name))
        self.config.save_pretrained(str(save_directory))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs) -> ModelOutput:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        inputs.update(kwargs)
        inputs = {name: value for name, value in inputs.items() if value is not None}
        if "input_ids" in inputs:
            ids = torch.as_tensor(inputs["input_ids"])
            inputs.setdefault("attention_mask", torch.ones_like(ids))
            inputs.setdefault("token_type_ids", torch.zeros_like(ids))
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise ValueError(f"the ONNX model needs inputs {missing}; got {sorted(inputs)}")
        outputs = self.runtime.run({name: _int64(inputs[name]) for name in self.input_names})
        return ModelOutput(
            **{name: torch.from_numpy(value) for name, value in zip(self.output_names, outputs, strict=True)}
        )

    __call__ = forward

    def eval(self) -> OnnxModel:
        return self

    def to(self, device) -> OnnxModel:
        if torch.device(device).type != "cpu":
            raise ValueError(f"device={device!s}: this ONNX Runtime model runs on the CPU only (device='cpu')")
        return self

    def can_generate(self) -> bool:
        return False

    def parameter_counts(self) -> dict:
        """Total and nonzero weights of the graph's constants, and the bits most of them are stored in."""
        from collections import Counter

        total = nonzero = 0
        bits = Counter()
        for array in self.runtime.constants():
            if array.size <= 1:  # scales and zero points
                continue
            total += array.size
            nonzero += int((array != 0).sum())
            bits[array.dtype.itemsize * 8] += array.size
        return {
            "params_total": total,
            "params_nonzero": nonzero,
            "sparsity": 1 - nonzero / total if total else 0.0,
            "bits": bits.most_common(1)[0][0] if bits else None,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, inputs={self.input_names}, outputs={self.output_names})"


class OnnxRuntime:
    """An ONNX Runtime session on the CPU; worker threads do not spin between calls (see `OnnxModel`)."""

    def __init__(self, path: str, session_options=None):
        import onnxruntime as ort

        if session_options is None:
            session_options = ort.SessionOptions()
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(path, session_options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.path = path

    def run(self, feed: dict) -> list:
        return self.session.run(self.output_names, feed)

    def constants(self):
        import onnx
        from onnx import numpy_helper

        for initializer in onnx.load(self.path, load_external_data=True).graph.initializer:
            yield numpy_helper.to_array(initializer)


class OpenVinoRuntime:
    """An OpenVINO model compiled for the CPU for latency, with as many threads as torch uses."""

    def __init__(self, path: str, properties: dict | None = None):
        import openvino as ov

        properties = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
            **(properties or {}),
        }
        self.model = ov.Core().read_model(path)
        self.compiled = ov.Core().compile_model(self.model, "CPU", properties)
        self.request = self.compiled.create_infer_request()
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self.output_names = [port.get_any_name() for port in self.compiled.outputs]

    def run(self, feed: dict) -> list:
        results = self.request.infer(feed)
        return [results[port].copy() for port in self.compiled.outputs]

    def constants(self):
        for op in self.model.get_ordered_ops():
            if op.get_type_name() == "Constant":
                yield op.get_data()


class OnnxModelForSequenceClassification(OnnxModel):
    """An exported `*ForSequenceClassification`: `pipeline("text-classification", model=...)`."""

    task, auto_class = "text-classification", "AutoModelForSequenceClassification"


class OnnxModelForTokenClassification(OnnxModel):
    """An exported `*ForTokenClassification`: `pipeline("token-classification", model=...)`."""

    task, auto_class = "token-classification", "AutoModelForTokenClassification"


class OnnxModelForMaskedLM(OnnxModel):
    """An exported `*ForMaskedLM`: `pipeline("fill-mask", model=...)`."""

    task, auto_class = "fill-mask", "AutoModelForMaskedLM"

    @property
    def base_model_prefix(self) -> str:  # fill-mask names the model in its errors
        return self.config.model_type


class OnnxModelForFeatureExtraction(OnnxModel):
    """An exported base model (`BertModel`, e.g. a sentence embedder): `pipeline("feature-extraction",
    model=...)`, outputs `last_hidden_state` (and `pooler_output` where the model has a pooler)."""

    task, auto_class = "feature-extraction", "AutoModel"


HEADS = {
    "ForSequenceClassification": OnnxModelForSequenceClassification,
    "ForTokenClassification": OnnxModelForTokenClassification,
    "ForMaskedLM": OnnxModelForMaskedLM,
    "Model": OnnxModelForFeatureExtraction,
}
TASK_CLASSES = {head.auto_class: head for head in HEADS.values()}


def class_for_config(config) -> type[OnnxModel]:
    """The `OnnxModelFor*` class of the head named in `config.architectures` (the generic class if unknown)."""
    for name in config.architectures or []:
        for suffix, head in HEADS.items():
            if name.endswith(suffix):
                return head
    return OnnxModel


def from_pretrained_for_auto(auto_class_name: str, name_or_path, kwargs: dict) -> OnnxModel | None:
    """What `AutoModelFor*.from_pretrained(name_or_path, **kwargs)` returns for an ONNX export after
    `import tlc_hf`; None when `name_or_path` is not one (then transformers loads it as usual)."""
    config = kwargs.get("config")
    if not isinstance(config, PretrainedConfig):
        config = _config_if_onnx(name_or_path, {key: kwargs[key] for key in HUB_KWARGS if key in kwargs})
    if config is None or not is_onnx_export(config):
        return None
    kwargs = {**kwargs, "config": config}
    head = TASK_CLASSES.get(auto_class_name)
    if head is None:
        raise ValueError(
            f"{name_or_path!s} is an ONNX export of {', '.join(config.architectures or [])}; {auto_class_name} cannot "
            f"load it (use {class_for_config(config).auto_class} or tlc_hf.load_compressed)"
        )
    return head.from_pretrained(name_or_path, **kwargs)


def _config_if_onnx(name_or_path, hub: dict):
    """The config of `name_or_path` when its `config.json` resolves (folder, cache or Hub) and records an ONNX
    export, else None; a location that does not resolve is left to transformers to report."""
    import json

    from transformers.utils import cached_file

    if not isinstance(name_or_path, (str, os.PathLike)):
        return None
    try:
        path = cached_file(
            str(name_or_path),
            "config.json",
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
            **hub,
        )
    except (OSError, ValueError):
        return None
    if path is None:
        return None
    with open(path) as f:
        if not is_onnx_export(json.load(f)):
            return None
    return AutoConfig.from_pretrained(name_or_path, **hub)


def _accept_in_pipelines() -> None:
    """`Pipeline.check_model_type` knows transformers' classes by name and logs an error for any other;
    let it accept an `OnnxModelFor*` whose head is the pipeline's task (once per process)."""
    from transformers.pipelines import TASK_ALIASES
    from transformers.pipelines.base import Pipeline

    original = Pipeline.check_model_type
    if getattr(original, "_tlc_onnx", False):
        return

    def check_model_type(self, supported_models):
        if isinstance(self.model, OnnxModel) and self.model.task in (None, TASK_ALIASES.get(self.task, self.task)):
            return None
        return original(self, supported_models)

    check_model_type._tlc_onnx = True
    Pipeline.check_model_type = check_model_type


def _resolve(name_or_path, backend: str, hub: dict) -> str:
    """The local path of the export's graph, every file it needs fetched beside it (folder, cache or Hub)."""
    from transformers.utils import cached_file

    graph, *weights = EXPORT_FILES[backend]
    path = cached_file(str(name_or_path), graph, **hub)
    for name in weights:
        cached_file(str(name_or_path), name, **hub)
    if backend == "onnxruntime":  # weights > 2 GB live beside the graph; ORT finds them next to it
        cached_file(str(name_or_path), ONNX_NAME + ".data", _raise_exceptions_for_missing_entries=False, **hub)
    return path


def _check_runtime_options(kwargs: dict) -> None:
    for key in _IGNORED_KWARGS:
        kwargs.pop(key, None)
    device_map = kwargs.pop("device_map", None)
    if device_map not in (None, "cpu", "auto") and str(device_map) != "cpu":
        raise ValueError(f"device_map={device_map!r}: an ONNX Runtime export runs on the CPU (device_map='cpu')")
    dtype = kwargs.pop("dtype", kwargs.pop("torch_dtype", None))
    if dtype not in (None, "auto", torch.float32, "float32"):
        raise ValueError(f"dtype={dtype!r}: an int8 ONNX export computes in its own types; leave dtype unset")
    if kwargs:
        raise ValueError(
            f"{sorted(kwargs)} do not apply to an ONNX export; it takes {list(HUB_KWARGS)}, config and session_options"
        )


def _int64(value):
    import numpy as np

    return np.asarray(value.detach().cpu() if torch.is_tensor(value) else value, dtype=np.int64)
