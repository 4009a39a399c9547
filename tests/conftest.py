"""Offline, seeded, CPU-only test session."""

import os

# Set before transformers/datasets are imported anywhere: an accidental download fails loudly.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["WANDB_DISABLED"] = "true"

import random  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _tlc_cache(tmp_path_factory):
    """A fresh tlc_hf cache per session, so tests see first builds and cache hits they made themselves."""
    path = tmp_path_factory.mktemp("tlc_cache")
    os.environ["TLC_HF_CACHE"] = str(path)
    yield path


@pytest.fixture(scope="session")
def small_corpus():
    """2,000 real reviews (stratified), split 90/5/5."""
    from tlc_hf.data import load_corpus

    return load_corpus(max_examples=2000, seed=0)


@pytest.fixture(scope="session")
def bpe_tokenizer(small_corpus):
    from tlc_hf.data import train_tokenizer

    return train_tokenizer("bpe", 1000, small_corpus)


@pytest.fixture
def hub(tmp_path):
    """A Hub-compatible server on 127.0.0.1 (tlc_hf.testing.hub), with huggingface_hub and transformers pointed
    at it (online, token of the user "tlc-user", member of "org"); `hub.url`, `hub.push(folder, repo_id)`."""
    from tlc_hf.testing.hub import HubServer

    with HubServer(tmp_path / "hub") as server, server.environment():
        yield server
