"""Preference pairs to the token ids TRL's DPOTrainer takes: `prompt_ids`, `chosen_ids`,
`rejected_ids` (its `DataCollatorForPreference` puts loss on every chosen and rejected id).

Each side is rendered whole (prompt + completion) with the chat template, through the same
`Encoder.render` and `turns.trained_spans` as SFT, with only the completion's messages
trained: the prompt ids are the tokens before the first trained token (and shared by both
sides), a side's ids run from there to its last trained token — the end-of-turn marker
included, whatever the template puts after it excluded. Plain-text pairs are
BOS + prompt + completion + EOS, as TRL builds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubetune_trainer.data.tokenize import (
    IGNORE,
    Encoder,
    Refused,
    Stats,
    TemplateError,
    tokenized_with_labels,
)
from kubetune_trainer.data.turns import trained_spans

Side = tuple[list[int], list[int]]  # ids, labels


@dataclass
class EncodedPair:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]


class PairEncoder:
    """Templates and tokenizes batches of preference pairs for one tokenizer."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.encoder = Encoder(tokenizer, ["assistant"], max_length)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.stats: Stats = self.encoder.stats

    def side(self, pair: dict[str, Any], which: str) -> tuple[str, list[tuple[int, int]]]:
        """The text of prompt + one completion, and the completion's trained characters."""
        if isinstance(pair["prompt"], str):
            eos = self.tokenizer.eos_token or ""
            head = self.encoder._bos + pair["prompt"]
            text = head + pair[which] + (eos if not pair[which].endswith(eos) else "")
            return text, [(len(head), len(text))]
        messages = [*pair["prompt"], *pair[which]]
        return trained_spans(
            self.encoder.render,
            messages,
            pair.get("tools"),
            {"assistant"},
            self.encoder.markers,
            first=len(pair["prompt"]),
        )

    def encode_batch(self, pairs: list[dict[str, Any]]) -> list[EncodedPair | Refused | None]:
        """One result per pair: encoded, refused by the template, or None when no completion
        token is left after truncation (counted in the stats)."""
        out: list[EncodedPair | Refused | None] = []
        for pair in pairs:
            try:
                texts = [self.side(pair, "chosen"), self.side(pair, "rejected")]
            except TemplateError as err:
                out.append(Refused(str(err)))
                continue
            sides = tokenized_with_labels(
                self.tokenizer, [t for t, _ in texts], [s for _, s in texts]
            )
            out.append(self._split(*sides))
        return out

    def _split(self, chosen: Side, rejected: Side) -> EncodedPair | Refused | None:
        starts, ends = [], []
        for _, labels in (chosen, rejected):
            trained = [i for i, label in enumerate(labels) if label != IGNORE]
            if not trained:
                return Refused("empty completion: the template shows no completion tokens")
            starts.append(trained[0])
            ends.append(trained[-1] + 1)
        common = 0
        a, b = chosen[0], rejected[0]
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        cut = min(common, *starts)
        pair = EncodedPair(a[:cut], a[cut : ends[0]], b[cut : ends[1]])
        return self._truncate(pair)

    def _truncate(self, pair: EncodedPair) -> EncodedPair | None:
        """Keep the start (as TRL's collator does) and count what was cut."""
        stats, room = self.stats, self.max_length - len(pair.prompt_ids)
        longest = max(len(pair.chosen_ids), len(pair.rejected_ids))
        if room < 1:
            stats.dropped_no_labels += 1
            return None
        if longest > room:
            stats.truncated_samples += 1
            stats.truncated_tokens += longest - room
            pair.chosen_ids, pair.rejected_ids = pair.chosen_ids[:room], pair.rejected_ids[:room]
        stats.samples += 1
        completions = len(pair.chosen_ids) + len(pair.rejected_ids)
        stats.tokens += 2 * len(pair.prompt_ids) + completions
        stats.trained_tokens += completions
        return pair
