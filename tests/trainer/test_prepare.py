"""`prepare`: every file kind loads, inline Jinja templates apply, a crashed preparation is
redone (never half-used), and a missing source says which one."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kubetune_trainer.stages.prepare import COMPLETE, PrepareError, prepare
from kubetune_trainer.storage.errors import SourceError
from tests.support.jobs import RECORDS, TINY_DATA, config_for


def test_every_file_kind_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    import datasets

    (tmp_path / "chat.json").write_text(json.dumps(RECORDS))
    datasets.Dataset.from_list(RECORDS).to_parquet(str(tmp_path / "chat.parquet"))
    datasets.Dataset.from_list(RECORDS).save_to_disk(str(tmp_path / "saved"))
    sources: list[dict[str, object]] = [
        {"source": str(tmp_path / name)} for name in ("chat.json", "chat.parquet", "saved")
    ]
    sources.append({"source": str(TINY_DATA), "sampleLimit": 50})
    config = config_for(tiny_model_dir, tmp_path / "ws", **{"spec.dataset.sources": sources})
    report = prepare(config)["report"]
    assert [s["records"] for s in report["sources"]] == [50, 50, 50, 50]
    assert report["train"]["samples"] == 200


def test_held_out_data_from_a_fraction_or_a_validation_source(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Both kinds of held-out data are packed like the training rows and keep their
    conversations for tool-call scoring; which one was used is part of the fingerprint."""
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:12]))
    fraction = prepare(
        config_for(tiny_model_dir, tmp_path / "a", **{"spec.dataset.evalFraction": 0.1})
    )
    validation = prepare(
        config_for(
            tiny_model_dir,
            tmp_path / "b",
            **{"spec.dataset.validation": {"source": str(tmp_path / "valid.jsonl")}},
        )
    )
    total = fraction["report"]["train"]["samples"] + fraction["report"]["eval"]["samples"]
    assert validation["report"]["train"]["samples"] == total  # nothing held out of training
    assert validation["report"]["eval"]["samples"] == 12
    assert validation["report"]["sources"][-1]["validation"] is True
    assert fraction["fingerprint"] != validation["fingerprint"]
    for result in (fraction, validation):
        kept = (Path(result["dataset"]) / "eval_conversations.jsonl").read_text().splitlines()
        assert (
            len(kept)
            == result["report"]["eval"]["samples"]
            == result["report"]["eval"]["conversations"]
        )
        assert json.loads(kept[0])["messages"][-1]["role"] == "assistant"


def test_inline_jinja_template_is_used(tiny_model_dir: Path, tmp_path: Path) -> None:
    import datasets
    from transformers import AutoTokenizer

    jinja = (
        "{% for m in messages %}{{ '[' ~ m.role ~ ']' ~ m.content ~ '</s>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '[assistant]' }}{% endif %}"
    )
    config = config_for(tiny_model_dir, tmp_path, **{"spec.dataset.chatTemplate": {"jinja": jinja}})
    result = prepare(config)
    row = datasets.load_from_disk(str(Path(result["dataset"]) / "train"))[0]
    text = AutoTokenizer.from_pretrained(tiny_model_dir).decode(row["input_ids"])
    assert "[user]" in text and "[assistant]" in text and "<|im_start|>" not in text


def test_a_crashed_preparation_is_redone(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = config_for(tiny_model_dir, tmp_path)
    target = Path(prepare(config)["dataset"])
    # Simulate a holder that died mid-build: no COMPLETE folder, a torn temp folder, a lock
    # file whose heartbeat stopped long ago.
    import shutil

    shutil.rmtree(target)
    torn = target.with_name(f"{target.name}.tmp-deadhost:1")
    (torn / "train").mkdir(parents=True)
    lock = target.with_name(f"{target.name}.lock")
    lock.write_text("{}")
    old = time.time() - 600
    os.utime(lock, (old, old))
    result = prepare(config)
    assert (target / COMPLETE).exists() and not torn.exists()
    assert result["report"]["train"]["samples"] == 400


def test_a_missing_source_names_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = config_for(
        tiny_model_dir, tmp_path, **{"spec.dataset.sources": [{"source": "/nope.jsonl"}]}
    )
    with pytest.raises(
        SourceError,
        match=r"dataset.sources\[0\].source \(/nope.jsonl\): /nope.jsonl does not exist",
    ):
        prepare(config)


def test_rows_that_do_not_fit_are_skipped_and_counted_with_their_reason(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    system_row = {"messages": [{"role": "system", "content": "Terse."}, *RECORDS[1]["messages"]]}
    bad_role = {"messages": [{"role": "bot", "content": "x"}]}
    plain = [r for r in RECORDS if r["messages"][0]["role"] != "system"][:10]
    data = [*plain, system_row, bad_role]
    (tmp_path / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    config = config_for(
        tiny_model_dir,
        tmp_path / "ws",
        **{
            "spec.dataset.sources": [{"source": str(tmp_path / "mixed.jsonl")}],
            # Gemma 2's official template refuses system turns
            "spec.dataset.chatTemplate": {"builtin": "gemma-2"},
        },
    )
    (source,) = prepare(config)["report"]["sources"]
    assert source["records"] == 12 and source["skipped"] == 2
    assert source["skippedReasons"] == {
        "the chat template refused it": 1,
        "unknown role 'bot' (expected system, user, assistant or tool)": 1,
    }
    assert any(e.startswith("row 11: unknown role") for e in source["firstErrors"])
    assert any(
        e == "row 10: the chat template refused it: System role not supported"
        for e in source["firstErrors"]
    )


def test_a_source_where_nothing_survives_names_it_and_the_first_reasons(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "bad.jsonl").write_text('{"messages": [{"role": "bot", "content": "x"}]}\n' * 3)
    config = config_for(
        tiny_model_dir,
        tmp_path / "ws",
        **{"spec.dataset.sources": [{"source": str(tmp_path / "bad.jsonl")}]},
    )
    with pytest.raises(
        PrepareError,
        match=r"dataset.sources\[0\] \(.*bad.jsonl\): none of its 3 records .* first reasons: row \d: unknown role 'bot'",
    ):
        prepare(config)


def test_a_template_that_does_not_compile_is_a_clear_error(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = config_for(
        tiny_model_dir,
        tmp_path,
        **{"spec.dataset.chatTemplate": {"jinja": "{{ messages[0].content }"}},
    )
    with pytest.raises(
        PrepareError, match=r"dataset.chatTemplate: the chat template does not compile: line 1"
    ):
        prepare(config)
