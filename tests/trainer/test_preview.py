"""`preview` shows the first samples as the model sees them, trained tokens highlighted."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from kubetune_trainer.stages.preview import preview
from tests.support.jobs import RECORDS, config_for


def test_preview_highlights_the_trained_tokens(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = {"messages": [{"role": "bot", "content": "x"}]}
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [bad, *RECORDS[:5]]))
    config = config_for(
        tiny_model_dir,
        tmp_path / "ws",
        **{"spec.dataset.sources": [{"source": str(tmp_path / "chat.jsonl")}]},
    )
    console = Console(record=True, width=200, color_system="truecolor")
    assert preview(config, 6, console) == 5
    text = console.export_text(clear=False)
    assert "row 0: skipped: unknown role 'bot'" in text
    assert text.count("trained") >= 5 and "<|im_start|>assistant" in text
    # not a terminal: trained runs also between brackets, headers outside them
    assert "<|im_start|>assistant\n⟦" in text and "<|im_end|>\n⟧" in text
    styled = console.export_text(styles=True)
    # replies and their end-of-turn marker highlighted (green background), headers not
    assert "\x1b[1;30;42mGrass is green.<|im_end|>" in styled
    assert "\x1b[1;30;42m<|im_start|>" not in styled
