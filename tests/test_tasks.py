"""The task registry: one TaskSpec per task, one task inference for models, configs and config.json dicts."""

import pytest
from transformers import BertConfig, BertModel

from tlc_hf.tasks import TASKS, check_task, infer_task, task_spec
from tlc_hf.testing import tiny_model
from tlc_hf.training import BudgetSeq2SeqTrainer, BudgetSeq2SeqTrainingArguments, BudgetTrainer


@pytest.mark.parametrize(
    ("family", "task"), [("bert", "mlm"), ("roberta", "classification"), ("t5", "seq2seq"), ("mt5", "seq2seq")]
)
def test_a_model_its_config_and_its_config_json_give_the_same_task(family, task):
    model = tiny_model(family, task)
    model.config.architectures = [type(model).__name__]  # as save_pretrained writes it
    assert infer_task(model) == infer_task(model.config) == infer_task(model.config.to_dict()) == task
    assert check_task(task, model) is check_task(task, model.config) is task_spec(task)
    assert isinstance(model, task_spec(task).model_class._model_mapping[type(model.config)])


def test_each_task_names_its_trainer_arguments_and_metrics():
    assert TASKS == ("mlm", "classification", "seq2seq")
    assert task_spec("seq2seq").trainer_class is BudgetSeq2SeqTrainer
    assert task_spec("seq2seq").training_arguments_class is BudgetSeq2SeqTrainingArguments
    assert task_spec("mlm").trainer_class is task_spec("classification").trainer_class is BudgetTrainer
    assert task_spec("mlm").preprocess_logits_for_metrics is not None
    assert task_spec("classification").compute_metrics.__name__ == "accuracy_metrics"


def test_bad_tasks_are_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match=r"task='ner' is not known; choose one of \('mlm', 'classification'"):
        task_spec("ner")
    with pytest.raises(ValueError, match="task='mlm' does not fit model_type='t5'; it takes seq2seq"):
        check_task("mlm", tiny_model("t5").config)
    with pytest.raises(ValueError, match="cannot tell the task of BertModel; give --task"):
        infer_task(BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2)))
    with pytest.raises(ValueError, match="cannot tell the task of BertModel"):
        infer_task({"model_type": "bert", "architectures": ["BertModel"]})  # the report no longer guesses
