"""Adding fields to a Trainer log record from a callback."""

from __future__ import annotations


def add_log_fields(state, logs: dict | None, fields: dict) -> None:
    """Put `fields` into the record the callbacks see and into `state.log_history`.

    `Trainer.log` appends its own copy of the record to `log_history` before calling `on_log`, so a
    callback that only updates `logs` would leave the history without the fields.
    """
    if logs is None:
        return
    logs.update(fields)
    if state.log_history and state.log_history[-1].get("step") == state.global_step:
        state.log_history[-1].update(fields)
