"""The budget log: one JSON line per evaluation, skip, cut and end of training, in `output_dir`."""

from __future__ import annotations

import json
import os

BUDGET_LOG_NAME = "budget_log.jsonl"


class BudgetLog:
    """Appends records to `output_dir/<file_name>` on the main process only: the raw material for
    loss-vs-time curves and the account of what the deadline skipped or cut.

    Args:
        file_name: the file in `args.output_dir`; `None` writes nothing.

    Example:
        ```python
        BudgetLog().append(args, state, {"event": "end", "ended_by": "deadline", "step": 120})
        ```
    """

    def __init__(self, file_name: str | None = BUDGET_LOG_NAME):
        self.file_name = file_name

    def append(self, args, state, record: dict) -> None:
        if self.file_name and state.is_world_process_zero and args.output_dir:
            os.makedirs(args.output_dir, exist_ok=True)
            with open(os.path.join(args.output_dir, self.file_name), "a") as f:
                f.write(json.dumps(record) + "\n")
