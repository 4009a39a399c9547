"""Push and pull through the Hub's HTTP API: the unmodified huggingface_hub and transformers clients against the
Hub-compatible test server (tlc_hf.testing.hub) on 127.0.0.1, for every compressed kind."""

import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tlc_hf import load_compressed, prune_structured_, save_compressed
from tlc_hf.testing import random_batch, tiny_model
from tlc_hf.testing.hub import OTHER_TOKEN, TEST_USER

logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def wordpiece(small_corpus):
    from tlc_hf.data import train_tokenizer

    return train_tokenizer("bert", 300, small_corpus)


def _tiny_classifier(tokenizer, **overrides):
    return tiny_model("bert", "classification", vocab_size=len(tokenizer), num_attention_heads=4, **overrides)


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def test_push_then_pull_by_hub_id(hub, tmp_path, wordpiece):
    model = _tiny_classifier(wordpiece)
    prune_structured_(model, heads=0.5, ffn=0.5)
    local = save_compressed(model, tmp_path / "tiny", wordpiece)
    url = hub.push(local, "org/tiny")
    assert url.startswith(f"{hub.url}/org/tiny/commit/") and url.endswith(hub.commits("org/tiny")[0])
    assert len(hub.commits("org/tiny")) == 2  # the repo's first commit (.gitattributes), then the push
    steps = [path.split("?")[0] for method, path, _ in hub.requests if method in ("POST", "PUT")]
    assert steps[0] == "/api/repos/create" and steps[-1] == "/api/models/org/tiny/commit/main"
    assert "/org/tiny.git/info/lfs/objects/batch" in steps  # the weights go through LFS

    batch = random_batch("bert", vocab_size=len(wordpiece))
    expected = _logits(AutoModelForSequenceClassification.from_pretrained(local), batch)
    pulled = AutoModelForSequenceClassification.from_pretrained("org/tiny")
    assert torch.equal(_logits(pulled, batch), expected)
    assert torch.equal(_logits(load_compressed("org/tiny"), batch), expected)
    assert AutoTokenizer.from_pretrained("org/tiny")("a film").input_ids == wordpiece("a film").input_ids


def test_the_server_answers_as_the_hub(hub, tmp_path):
    local = save_compressed(tiny_model("bert", "classification"), tmp_path / "tiny")
    hub.push(local, "org/tiny")
    api = HfApi()
    info = api.model_info("org/tiny")
    assert info.id == "org/tiny" and info.sha == hub.commits("org/tiny")[0] and info.private is False
    assert {s.rfilename for s in info.siblings} == {".gitattributes", "config.json", "model.safetensors"}
    tree = {f.path: f for f in api.list_repo_tree("org/tiny")}
    assert tree["model.safetensors"].lfs is not None and tree["config.json"].lfs is None
    assert tree["model.safetensors"].lfs.sha256 == tree["model.safetensors"].lfs.sha256.lower()
    refs = api.list_repo_refs("org/tiny")
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", info.sha)]
    assert [c.commit_id for c in api.list_repo_commits("org/tiny")] == hub.commits("org/tiny")
    assert api.whoami()["name"] == TEST_USER

    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/tiny", "missing.json")
    with pytest.raises(RepositoryNotFoundError) as missing:
        api.model_info("org/missing")
    assert missing.value.response.status_code == 404  # with a token: 404
    assert missing.value.response.headers["X-Error-Code"] == "RepoNotFound"
    with pytest.raises(RepositoryNotFoundError) as anonymous:
        api.model_info("org/missing", token=False)
    assert anonymous.value.response.status_code == 401  # without one: 401, as the Hub answers


def test_private_repo_is_not_found_without_a_token_of_its_owner(hub, tmp_path):
    local = save_compressed(tiny_model("bert", "classification"), tmp_path / "tiny")
    hub.push(local, "org/secret", private=True)
    assert HfApi().model_info("org/secret").private is True
    for token in (False, OTHER_TOKEN):
        with pytest.raises(RepositoryNotFoundError):
            HfApi().model_info("org/secret", token=token)
    with pytest.raises(OSError, match="org/secret"):
        load_compressed("org/secret", token=OTHER_TOKEN)


def test_resolve_headers(hub, tmp_path):
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    local = save_compressed(tiny_model("bert", "classification"), tmp_path / "tiny")
    hub.push(local, "org/tiny")
    weights = (local_path := tmp_path / "tiny" / "model.safetensors").read_bytes()
    meta = get_hf_file_metadata(hf_hub_url("org/tiny", "model.safetensors"))
    assert meta.commit_hash == hub.commits("org/tiny")[0] and meta.size == len(weights)
    assert meta.etag == hashlib.sha256(weights).hexdigest()  # LFS: the linked etag is the sha256
    config = hf_hub_download("org/tiny", "config.json")
    assert json.loads(Path(config).read_text()) == json.loads((tmp_path / "tiny" / "config.json").read_text())
    assert Path(hf_hub_download("org/tiny", "model.safetensors")).read_bytes() == local_path.read_bytes()


def _carded_folder(tmp_path, tokenizer=None):
    """A structured-pruned tiny classifier with a report, a card naming another id, a plot and a checkpoint."""
    from test_hub import fixed_report

    from tlc_hf.hub import render_model_card

    model = tiny_model("bert", "classification", num_attention_heads=4)
    prune_structured_(model, heads=0.5, ffn=0.5)
    out = tmp_path / "tiny-pruned"
    save_compressed(model, out, tokenizer)
    fixed_report().save(out)
    render_model_card(fixed_report(), repo_id="somewhere/else", output_dir=out)
    (out / "checkpoint-5").mkdir()  # training leftovers are not pushed
    (out / "checkpoint-5" / "optimizer.pt").write_bytes(b"x")
    (out / "training_args.bin").write_bytes(b"x")
    return out, model


def test_push_is_one_commit_with_everything_and_the_card_names_the_repo(hub, tmp_path):
    out, _ = _carded_folder(tmp_path)
    hub.push(out, "org/tiny", commit_message="first")
    files = hub.files("org/tiny")
    assert set(files) == {
        ".gitattributes",
        "config.json",
        "model.safetensors",
        "compression_report.json",
        "README.md",
        "accuracy_vs_size.png",
    }
    assert len(hub.commits("org/tiny")) == 2
    card = files["README.md"].decode()
    assert 'from_pretrained("org/tiny")' in card and "somewhere/else" not in card
    assert card == (out / "README.md").read_text()  # re-rendered in the folder too


def test_push_only_from_the_main_process(hub, tmp_path, monkeypatch):
    out, _ = _carded_folder(tmp_path)
    monkeypatch.setenv("RANK", "1")
    assert hub.push(out, "org/tiny") is None
    assert hub.requests == []
