"""Push and pull through the Hub's HTTP API: the unmodified huggingface_hub and transformers clients against the
Hub-compatible test server (tlc_hf.testing.hub) on 127.0.0.1, for every compressed kind."""

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tlc_hf import (
    load_compressed,
    prune_depth_,
    prune_magnitude_,
    prune_structured_,
    prune_vocabulary_,
    quantize,
    save_compressed,
)
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


# ---- every compressed kind: push by API and by CLI, pull by every path, outputs as from the local folder -------
def _structured_uneven(model, tokenizer, corpus):
    prune_structured_(model, heads=0.5, ffn=0.5)
    widths = {layer.intermediate.dense.out_features for layer in model.bert.encoder.layer}
    assert len(widths) > 1, "one global ranking leaves layers uneven"
    return model, tokenizer, "dense"


def _magnitude(storage):
    def build(model, tokenizer, corpus):
        prune_magnitude_(model, 0.6)
        return model, tokenizer, storage

    return build


def _depth(model, tokenizer, corpus):
    prune_depth_(model, layers=0.5)
    return model, tokenizer, "dense"


def _vocabulary(model, tokenizer, corpus):
    trimmed = prune_vocabulary_(model, tokenizer, corpus["train"]["text"][:200])
    assert len(trimmed) < len(tokenizer)
    return model, trimmed, "dense"


def _quantized(backend, bits=8):
    def build(model, tokenizer, corpus):
        return quantize(model, backend=backend, bits=bits), tokenizer, "dense"

    return build


KINDS = {
    "structured-uneven": _structured_uneven,
    "sparse": _magnitude("sparse"),
    "magnitude": _magnitude("dense"),
    "depth": _depth,
    "vocabulary": _vocabulary,
    "torchao-int8": _quantized("torchao"),
    "bnb-int8": _quantized("bitsandbytes"),
    "onnx-int8": _quantized("onnxruntime"),
}
BENCH_FIELDS = ("size_on_disk_mb", "params_total", "params_nonzero", "sparsity", "bits")


def _cli_json(capsys, argv):
    from tlc_hf.cli import main

    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_round_trips_through_the_hub(kind, hub, tmp_path, wordpiece, small_corpus, capsys):
    from transformers import pipeline

    from tlc_hf.cli import main

    model, tokenizer, storage = KINDS[kind](_tiny_classifier(wordpiece), wordpiece, small_corpus)
    local = save_compressed(model, tmp_path / kind, tokenizer, storage=storage)
    hub.push(local, f"org/{kind}")
    assert main(["push", local, f"org/{kind}-cli"]) == 0
    assert hub.files(f"org/{kind}") == hub.files(f"org/{kind}-cli")  # the same bytes either way
    assert set(hub.files(f"org/{kind}")) - {".gitattributes"} == {p.name for p in (tmp_path / kind).iterdir()}

    batch = random_batch("bert", vocab_size=len(tokenizer))
    expected = _logits(load_compressed(local), batch)
    for repo in (f"org/{kind}", f"org/{kind}-cli"):
        assert torch.equal(_logits(load_compressed(repo), batch), expected)
    from_local = _logits(AutoModelForSequenceClassification.from_pretrained(local), batch)
    pulled = AutoModelForSequenceClassification.from_pretrained(f"org/{kind}")
    assert torch.equal(_logits(pulled, batch), from_local)
    texts = ["a warm, funny film", "dull and far too long"]
    assert pipeline("text-classification", model=f"org/{kind}")(texts) == pipeline("text-classification", model=local)(
        texts
    )

    evaluate = ["evaluate", "--max_examples", "16"]
    assert _cli_json(capsys, [*evaluate, f"org/{kind}"]) == _cli_json(capsys, [*evaluate, local])
    bench = ["bench", "--runs", "1", "--rounds", "1", "--seq_len", "16", "--batch_size", "2", "--device", "cpu"]
    from_hub, from_folder = _cli_json(capsys, [*bench, f"org/{kind}"]), _cli_json(capsys, [*bench, local])
    assert {k: from_hub[k] for k in BENCH_FIELDS} == {k: from_folder[k] for k in BENCH_FIELDS}
    assert from_hub["size_on_disk_mb"] > 0


# ---- a recipe's output, with its card and report ----------------------------------------------------------------
MEASURED = ("size_mb", "params", "nonzero_params", "sparsity", "bits", "metrics")


@pytest.fixture
def recipe_output(tmp_path, wordpiece, small_corpus):
    from tlc_hf import CompressionRecipe, run_recipe

    base = save_compressed(_tiny_classifier(wordpiece), tmp_path / "base", wordpiece)
    recipe = CompressionRecipe.from_dict(
        {"name": "tiny", "methods": [{"method": "structured", "heads": 0.5, "ffn": 0.5}], "targets": {"smaller": 1.1}}
    )
    out = tmp_path / "recipe-out"
    run_recipe(recipe, base, str(out), corpus=small_corpus, report_kwargs={"runs": 2, "max_examples": 32})
    return base, out


def test_recipe_output_with_card_and_report_round_trips(hub, recipe_output, tmp_path, capsys):
    from tlc_hf.cli import main
    from tlc_hf.hub import CompressionReport

    base, out = recipe_output
    assert 'from_pretrained("recipe-out")' in (out / "README.md").read_text()  # before the push: the folder's name
    assert main(["push", str(out), "org/tiny-recipe"]) == 0
    files = hub.files("org/tiny-recipe")
    assert {"README.md", "compression_report.json", "accuracy_vs_size.png", "model.safetensors"} <= set(files)
    assert 'from_pretrained("org/tiny-recipe")' in files["README.md"].decode()
    assert json.loads(files["compression_report.json"]) == json.loads((out / "compression_report.json").read_text())

    card = ["card", "--max_examples", "32", "--runs", "2", "--baseline", base]
    assert main([*card, "org/tiny-recipe", "--output_dir", str(tmp_path / "from-hub")]) == 0
    assert main([*card, str(out), "--output_dir", str(tmp_path / "from-folder"), "--repo_id", "org/tiny-recipe"]) == 0
    from_hub = CompressionReport.load(tmp_path / "from-hub")
    from_folder = CompressionReport.load(tmp_path / "from-folder")
    for side in ("compressed", "baseline"):
        hub_side, folder_side = getattr(from_hub, side), getattr(from_folder, side)
        assert {k: getattr(hub_side, k) for k in MEASURED} == {k: getattr(folder_side, k) for k in MEASURED}
    assert from_hub.methods == from_folder.methods and from_hub.size_ratio == from_folder.size_ratio
    headers = [(tmp_path / d / "README.md").read_text().split("---")[1] for d in ("from-hub", "from-folder")]
    assert headers[0] == headers[1]  # metadata and model-index alike


# ---- the Trainer's own push_to_hub=True, while a pruning callback runs -------------------------------------------
@pytest.mark.parametrize("strategy", ["end", "every_save"])
def test_trainer_push_to_hub_with_a_pruning_callback(strategy, hub, tmp_path):
    from tlc_hf import StructuredPruningCallback
    from tlc_hf.testing import toy_dataset, train_tiny

    pruning = StructuredPruningCallback(heads=0.5, ffn=0.5, start=0.0, end=0.5, steps=2)
    trainer = train_tiny(
        tiny_model("bert", "classification", num_attention_heads=4),
        toy_dataset("bert"),
        tmp_path / "run",
        [pruning],
        steps=8,
        push_to_hub=True,
        hub_model_id="org/trained",
        hub_strategy=strategy,
        save_strategy="steps",
        save_steps=4,
    )
    trainer.save_model()  # pushes the final model (hub_strategy "end": the only push)
    messages = [m for _, _, m in _commit_log(hub, "org/trained")]
    if strategy == "end":
        assert messages == ["Model save", "initial commit"]
    else:  # each save pushed while training ran; the last one, then the final model
        assert messages[0] == "Model save" and "Training in progress, step 4" in messages
        step4 = next(oid for oid, _, m in _commit_log(hub, "org/trained") if m == "Training in progress, step 4")
        at_step4 = load_compressed("org/trained", revision=step4)
        checkpoint = load_compressed(str(tmp_path / "run" / "checkpoint-4"))
        batch = random_batch("bert")
        assert torch.equal(_logits(at_step4, batch), _logits(checkpoint, batch))
    batch = random_batch("bert")
    final = load_compressed(str(tmp_path / "run"))
    pulled = AutoModelForSequenceClassification.from_pretrained("org/trained")
    assert torch.equal(_logits(pulled, batch), _logits(final, batch))
    assert pulled.config.tlc_compression["methods"][0]["method"] == "structured"
    assert sum(p.numel() for p in pulled.parameters()) < sum(
        p.numel() for p in tiny_model("bert", "classification", num_attention_heads=4).parameters()
    )


def _commit_log(hub, repo_id):
    return [(c.commit_id, c.created_at, c.title) for c in HfApi().list_repo_commits(repo_id)]


# ---- the card is a real Hub card ------------------------------------------------------------------------------
def test_the_pushed_card_is_a_hub_card(hub, recipe_output):
    from huggingface_hub import ModelCard, metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results

    from tlc_hf.hub import CompressionReport

    _, out = recipe_output
    hub.push(out, "org/tiny-recipe")
    card = ModelCard.load("org/tiny-recipe")  # over HTTP, by Hub id
    card.validate()  # the test Hub's validate-yaml
    report = CompressionReport.load(out)
    metrics = {k: round(v, 4) for k, v in report.compressed.metrics.items() if k in ("accuracy", "f1")}
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == metrics
    assert card.data.library_name == "transformers" and "tlc_hf" in card.data.tags
    meta = metadata_load(hf_hub_download("org/tiny-recipe", "README.md"))
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "org/tiny-recipe" and {r.metric_type for r in results} == set(metrics)
    # the baseline was a local folder whose config names no Hub model: no base_model, and the card says why
    assert "base_model" not in meta and report.base_model is None
    assert "No base model named: the baseline was a local folder" in card.text


def test_base_model_is_a_hub_id_never_a_path(tmp_path):
    from test_hub import fixed_report

    from tlc_hf.hub.card import render_model_card
    from tlc_hf.hub.ids import base_model_of
    from tlc_hf.testing.hub import check_card_metadata

    folder = tmp_path / "fp32"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}))
    assert base_model_of(folder) == ("nreimers/MiniLM-L6-H384-uncased", None)
    (folder / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path / "elsewhere")}))
    assert base_model_of(folder)[0] is None and "local folder" in base_model_of(folder)[1]
    assert base_model_of("org/tiny-base") == ("org/tiny-base", None)
    assert base_model_of(None) == (None, None)

    old = fixed_report()
    old.base_model = "/tmp/demo_default/real_model/fp32"  # as the demo's card had it
    card = str(render_model_card(old, repo_id="org/tiny"))
    assert "base_model" not in card.split("---")[1] and "is a local path, not a Hub id" in card
    assert check_card_metadata(card) == ([], [])
    as_before = card.replace("library_name:", "base_model: /tmp/demo_default/real_model/fp32\nlibrary_name:", 1)
    errors, _ = check_card_metadata(as_before)
    assert errors == ["\"base_model\" '/tmp/demo_default/real_model/fp32' is not a Hub model id"]


def test_the_demo_cards_the_real_minilm_as_its_base(tmp_path, monkeypatch):
    """The main job's card names the Hub id of the model it fine-tuned, not its temporary fp32 folder."""
    import tlc_hf.evaluation.frontier as frontier
    import tlc_hf.pretrained as pretrained
    import tlc_hf.workflows.recipe as recipe
    from tlc_hf.workflows.demo import real_model
    from tlc_hf.workflows.demo.preset import QUICK

    calls = []
    monkeypatch.setattr(pretrained, "minilm_dir", lambda: str(tmp_path / "minilm"))
    monkeypatch.setattr(real_model, "fine_tune", lambda *args, **kwargs: None)
    monkeypatch.setattr(recipe, "run_recipe", lambda *args, **kwargs: calls.append(kwargs))
    row = {"name": "cpu-int8", "smaller": 4.0, "speedup": 2.0, "accuracy_change": 0.0}
    monkeypatch.setattr(frontier, "measure_frontier", lambda variants, rounds: [row])
    preset = dataclasses.replace(
        QUICK, real_finetune="1s", real_batch=8, real_variants=(), real_recipe="cpu-int8", latency_rounds=1
    )
    real_model.compress_real_model(preset, str(tmp_path))
    assert [c["report_kwargs"]["base_model"] for c in calls] == ["sentence-transformers/all-MiniLM-L6-v2"]


# ---- revisions ----------------------------------------------------------------------------------------------------
def test_a_second_push_is_a_new_commit_and_revision_pulls_the_old_one(hub, tmp_path, wordpiece, capsys):
    v1 = _tiny_classifier(wordpiece)
    prune_structured_(v1, heads=0.5, ffn=0.5)
    hub.push(save_compressed(v1, tmp_path / "v1", wordpiece), "org/tiny")
    first = hub.commits("org/tiny")[0]
    v2 = _tiny_classifier(wordpiece, seed=1)
    prune_magnitude_(v2, 0.6)
    hub.push(save_compressed(v2, tmp_path / "v2", storage="sparse"), "org/tiny")  # no tokenizer this time
    commits = hub.commits("org/tiny")
    assert len(commits) == 3 and commits[1] == first
    assert "tokenizer.json" in hub.files("org/tiny", first) and "tokenizer.json" not in hub.files("org/tiny")

    batch = random_batch("bert", vocab_size=len(wordpiece))
    assert torch.equal(_logits(load_compressed("org/tiny", revision=first), batch), _logits(v1, batch))
    assert torch.equal(_logits(load_compressed("org/tiny"), batch), _logits(v2, batch))
    old = AutoModelForSequenceClassification.from_pretrained("org/tiny", revision=first)
    assert torch.equal(_logits(old, batch), _logits(v1, batch))
    bench = ["bench", "--runs", "1", "--rounds", "1", "--seq_len", "16", "--batch_size", "2", "--device", "cpu"]
    assert _cli_json(capsys, [*bench, "org/tiny", "--revision", first])["params_total"] == sum(
        p.numel() for p in v1.parameters()
    )
    hub.push(tmp_path / "v2", "org/tiny")  # nothing changed: no new commit
    assert hub.commits("org/tiny") == commits


# ---- failures: one clear line, the repo as it was ------------------------------------------------------------------
def _cli_error(capsys, argv) -> str:
    from tlc_hf.cli import main

    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("tlc-hf ") == 1 and "Traceback" not in err, err  # one error line (progress bars aside)
    return err[err.index("tlc-hf ") :].splitlines()[0]


@pytest.mark.parametrize("step, status", [("preupload", 400), ("lfs-upload", 413), ("commit", 500)])
def test_a_push_that_fails_midway_leaves_the_repo_at_its_previous_commit(hub, tmp_path, step, status, capsys):
    v1 = save_compressed(tiny_model("bert", "classification"), tmp_path / "v1")
    hub.push(v1, "org/tiny")
    before, files = hub.commits("org/tiny"), hub.files("org/tiny")
    v2 = save_compressed(tiny_model("bert", "classification", seed=1), tmp_path / "v2")
    hub.fail(step, status)
    with pytest.raises(ConnectionError, match=rf"could not push .* HTTP {status}: injected failure of {step}"):
        hub.push(v2, "org/tiny")
    assert hub.commits("org/tiny") == before and hub.files("org/tiny") == files
    hub.fail(step, status)
    err = _cli_error(capsys, ["push", v2, "org/tiny"])
    assert f"HTTP {status}" in err and "nothing was committed, the repo is as it was" in err
    assert hub.commits("org/tiny") == before and hub.files("org/tiny") == files
    hub.push(v2, "org/tiny")  # and the next push goes through, in one commit
    assert len(hub.commits("org/tiny")) == len(before) + 1


def test_a_transient_server_error_is_retried_by_the_client(hub, tmp_path):
    hub.fail("lfs-upload", 503)
    hub.push(save_compressed(tiny_model("bert", "classification"), tmp_path / "m"), "org/tiny")
    assert len(hub.commits("org/tiny")) == 2
    assert [s for m, p, s in hub.requests if m == "PUT"] == [503, 200]


def test_push_errors_are_one_clear_line(hub, tmp_path, capsys, monkeypatch):
    from tlc_hf.testing.hub import OTHER_USER, hub_client_environment

    folder = save_compressed(tiny_model("bert", "classification"), tmp_path / "m")
    hub.create_repo("someone-else/model", OTHER_USER)
    theirs = hub.commits("someone-else/model")
    for repo_id in ("someone-else/model", "stranger/new"):
        with pytest.raises(PermissionError, match=rf"the token may not write to {repo_id} \(HTTP 403"):
            hub.push(folder, repo_id)
        assert "HTTP 403" in _cli_error(capsys, ["push", folder, repo_id])
    assert hub.commits("someone-else/model") == theirs
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("stranger/new")

    hub.requests.clear()
    for bad in ("org/bad name", "a/b/c", "tiny", "org/-x", "org/x--y"):
        with pytest.raises(ValueError, match=r"repo_id=.* (is not a Hub id|must look like 'user-or-org/name')"):
            hub.push(folder, bad)
        assert "repo_id=" in _cli_error(capsys, ["push", folder, bad])
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(ValueError, match="no Hugging Face token: run `hf auth login`, set HF_TOKEN"):
        hub.push(folder, "org/tiny")
    assert "no Hugging Face token" in _cli_error(capsys, ["push", folder, "org/tiny"])
    assert hub.requests == []  # nothing reached the Hub

    down = f"http://127.0.0.1:{_closed_port()}"
    with hub_client_environment(down, cache_dir=tmp_path / "cache-down"):
        with pytest.raises(ConnectionError, match=f"cannot reach the Hub at {down}"):
            hub.push(folder, "org/tiny")
        assert f"cannot reach the Hub at {down}" in _cli_error(capsys, ["push", folder, "org/tiny"])
        assert "cannot reach the Hub" in _cli_error(capsys, ["evaluate", "org/tiny"])
        with pytest.raises(ConnectionError, match="could not load org/tiny: cannot reach .* not in the local cache"):
            load_compressed("org/tiny")


def test_pull_errors_are_one_clear_line(hub, tmp_path, capsys):
    hub.push(save_compressed(tiny_model("bert", "classification"), tmp_path / "m"), "org/tiny")
    assert "could not load org/missing: org/missing was not found" in _cli_error(capsys, ["bench", "org/missing"])
    err = _cli_error(capsys, ["evaluate", "org/tiny", "--revision", "v9"])
    assert "could not load org/tiny at revision v9: org/tiny has no such revision" in err


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- the README: how to push, and the exact snippet the card shows, run against the test Hub ----------------------
def test_readme_push_and_the_cards_snippet_run_against_the_hub(tmp_path, wordpiece, capsys, monkeypatch):
    import re

    from tlc_hf.cli import main
    from tlc_hf.testing.hub import TEST_TOKEN, HubServer

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("### Push") : readme.index("### Testing against a local Hub")]
    push_line = re.search(r"^tlc-hf push (\S+) (\S+)", section, re.M)
    snippets = re.findall(r"```python\n(.*?)```", section, re.S)
    card_snippet, pipeline_snippet = snippets[0], snippets[1]

    model = _tiny_classifier(wordpiece)
    prune_structured_(model, heads=0.5, ffn=0.5)
    folder, repo_id = push_line.group(1), push_line.group(2)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    save_compressed(model, folder, wordpiece)
    from test_hub import fixed_report

    from tlc_hf.hub import render_model_card

    fixed_report().save(folder)
    render_model_card(fixed_report(), output_dir=folder)  # a card naming the folder; the push renames it
    with HubServer(tmp_path / "hub", tokens={TEST_TOKEN: repo_id.split("/")[0]}) as hub, hub.environment():
        assert main(["push", folder, repo_id]) == 0
        card = hub.files(repo_id)["README.md"].decode()
        assert card.split("```python\n")[1].split("```")[0] == card_snippet  # the README shows the card's snippet
        namespace = {}
        exec(compile(card_snippet, "README-snippet", "exec"), namespace)  # noqa: S102 - our own README
        expected = _logits(model, namespace["inputs"]).softmax(-1)
        assert torch.equal(namespace["model"](**namespace["inputs"]).logits.softmax(-1), expected)
        exec(compile("import tlc_hf\n" + pipeline_snippet, "README-pipeline", "exec"), namespace)  # noqa: S102
        assert namespace["classify"]("a warm, funny film")[0]["score"] == pytest.approx(float(expected.max()))
    assert str(expected[0, 0].item())[:4] in capsys.readouterr().out  # the snippet printed the probabilities


# ---- the real MiniLM, compressed with a shipped recipe, pushed and pulled --------------------------------------
@pytest.mark.slow
def test_real_minilm_with_a_shipped_recipe_through_the_hub(hub, tmp_path, small_corpus, capsys):
    from huggingface_hub import ModelCard
    from transformers import pipeline

    from tlc_hf import CompressionRecipe, run_recipe
    from tlc_hf.cli import main
    from tlc_hf.pretrained import MINILM_HUB_ID, minilm_dir

    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    base_dir = save_compressed(base, tmp_path / "minilm", tokenizer)
    out = tmp_path / "cpu-int8-vocab"
    report_kwargs = {"runs": 3, "max_examples": 64, "base_model": MINILM_HUB_ID}
    run_recipe(
        CompressionRecipe.load("cpu-int8-vocab"), base_dir, str(out), corpus=small_corpus, report_kwargs=report_kwargs
    )
    assert main(["push", str(out), "org/minilm-int8"]) == 0
    card = ModelCard.load("org/minilm-int8")
    card.validate()
    assert card.data.base_model == MINILM_HUB_ID and 'from_pretrained("org/minilm-int8")' in card.text

    local, pulled = load_compressed(str(out)), load_compressed("org/minilm-int8")
    trimmed = AutoTokenizer.from_pretrained("org/minilm-int8")
    batch = dict(trimmed(["a warm, funny film", "dull and far too long"], return_tensors="pt", padding=True))
    assert torch.equal(_logits(pulled, batch), _logits(local, batch))
    evaluate = ["evaluate", "--max_examples", "64"]
    assert _cli_json(capsys, [*evaluate, "org/minilm-int8"]) == _cli_json(capsys, [*evaluate, str(out)])

    int8 = save_compressed(quantize(base, backend="torchao", bits=8), tmp_path / "torchao", tokenizer)
    hub.push(int8, "org/minilm-torchao")
    batch = dict(tokenizer(["a warm, funny film", "dull and far too long"], return_tensors="pt", padding=True))
    from_hub = AutoModelForSequenceClassification.from_pretrained("org/minilm-torchao")
    from_folder = AutoModelForSequenceClassification.from_pretrained(int8)
    assert torch.equal(_logits(from_hub, batch), _logits(from_folder, batch))
    sentences = ["a warm, funny film", "dull and far too long"]
    assert pipeline("text-classification", model="org/minilm-torchao")(sentences) == pipeline(
        "text-classification", model=int8
    )(sentences)
