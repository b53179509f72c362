"""Batches of rows for the model: right-padded, position ids, no attention mask.

Causal attention means real tokens never see the right padding, and the padding forms its own
segment (its position ids restart at 0), so no mask is needed and packed rows keep their
block-diagonal attention. Counts real tokens for the tokens/s figure.
"""

from __future__ import annotations

from typing import Any

import torch

from kubetune_trainer.data.tokenize import IGNORE


class PackedCollator:
    def __init__(self, pad_token_id: int, multiple_of: int = 8) -> None:
        self.pad_token_id = pad_token_id
        self.multiple_of = multiple_of
        self.real_tokens = 0  # since the last read; see take_real_tokens()

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(r["input_ids"]) for r in rows)
        width = -(-longest // self.multiple_of) * self.multiple_of
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            positions[i, :n] = torch.tensor(row["position_ids"])
            positions[i, n:] = torch.arange(width - n)
            self.real_tokens += n
        return {"input_ids": ids, "labels": labels, "position_ids": positions}

    def take_real_tokens(self) -> int:
        n, self.real_tokens = self.real_tokens, 0
        return n
