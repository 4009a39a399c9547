"""Add a LoRA adapter (peft), fine-tune it on the compressed model, merge it keeping pruned zeros (`recover_lora`)."""

from __future__ import annotations

import tempfile

import torch

from ...data.task_data import build_task_data
from ...tasks import task_spec
from ...training.arguments import BudgetSeq2SeqTrainingArguments
from ..compress import CompressionResult
from ..record import compression_history, record_compression, set_compression_history
from .config import LoraRecoveryConfig

ADAPTER_DIR = "adapter"  # where a kept adapter is saved, beside the weights


def can_merge(model) -> bool:
    return getattr(model, "hf_quantizer", None) is None


def add_lora(model, config: LoraRecoveryConfig, task: str):
    from peft import LoraConfig, TaskType, get_peft_model

    # On backend-held weights the adapter carries LoRA weights only: with a task type peft would also copy
    # the (quantized) classifier into the adapter, which cannot be saved.
    task_type = (
        {"classification": TaskType.SEQ_CLS, "seq2seq": TaskType.SEQ_2_SEQ_LM}.get(task) if can_merge(model) else None
    )
    lora = LoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=config.target_modules,
        task_type=task_type,
    )
    return get_peft_model(model, lora)


@torch.no_grad()
def merge_keeping_zeros(peft_model):
    """Merge the adapter; weights that were exactly zero (pruned) are zero again afterwards."""
    base = peft_model.get_base_model()
    zeros = {  # inside peft a wrapped Linear's weight is `<name>.base_layer.weight`
        name.replace(".base_layer.", "."): p == 0
        for name, p in base.named_parameters()
        if p.dim() >= 2 and "lora_" not in name and (p == 0).any()
    }
    merged = peft_model.merge_and_unload()
    for name, p in merged.named_parameters():
        if name in zeros:
            p.masked_fill_(zeros[name], 0.0)
    return merged


def recover_lora(model, config: LoraRecoveryConfig, context) -> CompressionResult:
    """Fine-tune a LoRA adapter on the compressed `model` (the context's data, tokenizer and task); merge it
    where the weights are float, else keep it as an artifact saved in `ADAPTER_DIR` beside the weights."""
    history = compression_history(model)
    peft_model = add_lora(model, config, context.task)
    train_data, _, collator = build_task_data(
        context.task, context.tokenizer, context.load_corpus(), seed=context.seed
    )
    with tempfile.TemporaryDirectory(prefix="tlc_hf_lora_") as tmp:
        args = BudgetSeq2SeqTrainingArguments(
            output_dir=tmp,
            time_budget=config.budget,
            learning_rate=config.learning_rate,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=context.seed,
        )
        task_spec(context.task).trainer_class(
            model=peft_model,
            args=args,
            train_dataset=train_data,
            data_collator=collator,
            processing_class=context.tokenizer,
        ).train()
    peft_model.eval()
    if can_merge(model):
        merged = merge_keeping_zeros(peft_model)
        set_compression_history(merged, history)
        record_compression(merged, config, merged=True)
        return CompressionResult(config.method, config, merged)
    base = peft_model.get_base_model()
    set_compression_history(base, history)
    record_compression(base, config, merged=False)
    return CompressionResult(config.method, config, base, artifacts={ADAPTER_DIR: peft_model})
