"""`preview`: the first training samples as the model will see them, trained tokens highlighted.

The same steps as `prepare` (model tokenizer, chat template, format conversion, masking) on the
first records of each source in preparation order, without writing anything — what Axolotl's
`preprocess --debug` shows. Refused records are listed with their reason.
"""

from __future__ import annotations

from typing import Any

from kubetune_api.config import TrainerConfig
from kubetune_api.inputs_spec import PREFERENCE_FORMATS
from kubetune_api.training_spec import GrpoSpec
from kubetune_trainer.data.formats import FormatError, convert
from kubetune_trainer.data.pairs import EncodedPair, PairEncoder
from kubetune_trainer.data.preference import convert_pair
from kubetune_trainer.data.prompts import EncodedPrompt, PromptEncoder, convert_prompt
from kubetune_trainer.data.tokenize import IGNORE, Encoded, Encoder, Refused

TRAINED = "bold black on green"
UNTRAINED = "dim"


def highlighted(tokenizer: Any, encoded: Encoded, brackets: bool = False) -> Any:
    """The sample's text, each run of trained tokens highlighted (and put between ⟦ ⟧ with
    `brackets`, for output that is not a terminal)."""
    from rich.text import Text

    text = Text()
    runs: list[tuple[bool, list[int]]] = []
    for token, label in zip(encoded.input_ids, encoded.labels, strict=True):
        if runs and runs[-1][0] == (label != IGNORE):
            runs[-1][1].append(token)
        else:
            runs.append((label != IGNORE, [token]))
    for trained, run in runs:
        if trained and brackets:
            text.append("⟦")
        text.append(tokenizer.decode(run), TRAINED if trained else UNTRAINED)
        if trained and brackets:
            text.append("⟧")
    return text


def preview(config: TrainerConfig, samples: int, console: Any, tokenizer: Any = None) -> int:
    """Print up to `samples` samples; returns how many were shown. `tokenizer`: the job's,
    already loaded (with the job's chat template), else it is loaded here."""
    import numpy as np

    from kubetune_trainer.stages.prepare import load_records, load_tokenizer
    from kubetune_trainer.storage.sources import fetch_dataset, fetch_model

    assert config.dataset is not None
    tokenizer = tokenizer or load_tokenizer(fetch_model(config).path, config)
    encoder = Encoder(tokenizer, config.dataset.trainOnRoles, config.training.maxLength)
    pair_encoder = PairEncoder(tokenizer, config.training.maxLength)
    grpo = config.training.grpo or GrpoSpec()
    prompt_encoder = PromptEncoder(tokenizer, config.training.maxLength, grpo.maxCompletionLength)
    prompts = config.training.objective == "grpo"
    shown = 0
    for index, source in enumerate(config.dataset.sources):
        records = load_records(fetch_dataset(config, index), source.split)
        rows = np.random.default_rng(config.training.seed).permutation(len(records))
        for row in rows.tolist():
            if shown >= samples:
                return shown
            where = f"dataset.sources[{index}] row {row}"
            pairs = source.format in PREFERENCE_FORMATS
            try:
                to_sample = convert_prompt if prompts else convert_pair if pairs else convert
                conversation = to_sample(records[row], source.format, source.fields)
            except FormatError as err:
                console.print(f"[yellow]{where}: skipped: {err}[/yellow]", highlight=False)
                continue
            chosen: Any = prompt_encoder if prompts else pair_encoder if pairs else encoder
            (result,) = chosen.encode_batch([conversation])
            if isinstance(result, EncodedPrompt):  # GRPO: what is completed, and the reference
                console.rule(f"{where}: prompt of {result.prompt_length} tokens")
                console.print(result.prompt, highlight=False, markup=False)
                console.print(f"reference: {result.reference}", highlight=False, markup=False)
                shown += 1
            elif isinstance(result, EncodedPair):
                for side in ("chosen", "rejected"):
                    ids = getattr(result, f"{side}_ids")
                    both = Encoded(result.prompt_ids + ids, [IGNORE] * len(result.prompt_ids) + ids)
                    console.rule(
                        f"{where} {side}: {len(both.input_ids)} tokens, {len(ids)} trained"
                    )
                    shown_text = highlighted(tokenizer, both, brackets=not console.is_terminal)
                    console.print(shown_text, highlight=False, markup=False)
                shown += 1
            elif isinstance(result, Refused):
                console.print(
                    f"[yellow]{where}: skipped: {result.reason}[/yellow]", highlight=False
                )
            elif result is None:
                console.print(f"[yellow]{where}: nothing left to train after truncation[/yellow]")
            else:
                trained = sum(1 for label in result.labels if label != IGNORE)
                console.rule(f"{where}: {len(result.input_ids)} tokens, {trained} trained")
                shown_text = highlighted(tokenizer, result, brackets=not console.is_terminal)
                console.print(shown_text, highlight=False, markup=False)
                shown += 1
    return shown


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from rich.console import Console

    from kubetune_trainer.stages.prepare import PrepareError
    from kubetune_trainer.storage.errors import SourceError

    parser = argparse.ArgumentParser(prog="kubetune_trainer preview", description=__doc__)
    parser.add_argument("--config", required=True, help="trainer.yaml (the ConfigMap's key)")
    parser.add_argument("--samples", type=int, default=3, help="how many samples to show")
    args = parser.parse_args(argv)
    config = TrainerConfig.load(args.config)
    if config.dataset is None:
        print("kubetune preview: this job has no dataset", file=sys.stderr)
        return 1
    console = Console(highlight=False, soft_wrap=True)
    legend = "⟦trained⟧" if not console.is_terminal else "trained"
    console.print(f"[{TRAINED}] {legend} [/] [{UNTRAINED}]not trained[/]")
    try:
        preview(config, args.samples, console)
    except (PrepareError, SourceError) as err:
        print(f"kubetune preview: {err}", file=sys.stderr)
        return 1
    return 0
