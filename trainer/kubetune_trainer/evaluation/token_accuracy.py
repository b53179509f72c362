"""Mean token accuracy on the held-out data, beside the Trainer's eval loss.

The definition is TRL's `mean_token_accuracy` (SFTTrainer): among the positions whose label is
trained (not -100), the share where the model's most likely next token is the label, with logits
at position t scored against the label at t + 1 — the same shift the loss uses. TRL averages
per-batch ratios; here the ratio is taken over every held-out token at once (the two agree when
the held-out set is one batch), so it does not depend on the eval batch size.

`argmax` runs as the Trainer's `preprocess_logits_for_metrics`, so only one token id per
position is kept across eval batches, never the logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kubetune_trainer.data.tokenize import IGNORE


def argmax(logits: Any, labels: Any) -> Any:
    """`preprocess_logits_for_metrics`: the predicted token at each position."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def mean_token_accuracy(prediction: Any) -> dict[str, float]:
    """`compute_metrics`: the Trainer logs it as `eval_mean_token_accuracy`."""
    predicted = np.asarray(prediction.predictions)[:, :-1]
    labels = np.asarray(prediction.label_ids)[:, 1:]
    trained = labels != IGNORE
    total = int(trained.sum())
    correct = int(((predicted == labels) & trained).sum())
    return {"mean_token_accuracy": correct / total if total else 0.0}
