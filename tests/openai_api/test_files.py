"""Uploaded files: checked line by line with the trainer's own converters, the bad line named;
OpenAI's DPO lines rewritten into TRL's preference records; the file object in OpenAI's shape
(validated with the `openai` package's own model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai.types import FileObject

from kubetune.openai_api.errors import ApiError
from kubetune.openai_api.files import FilesystemStore, StoredFile
from kubetune.openai_api.jsonl import check_file
from kubetune_trainer.data.preference import convert_pair
from tests.support.openai_api import chat_line, dpo_line, jsonl


def test_a_chat_file_is_supervised_and_trained_as_uploaded() -> None:
    data = jsonl(chat_line(), chat_line("What is 1 plus 1?", "2."))
    checked = check_file(data)
    assert (checked.kind, checked.examples) == ("supervised", 2)
    assert checked.training == data


def test_openai_dpo_lines_become_trl_preference_records() -> None:
    checked = check_file(jsonl(dpo_line(), dpo_line("What colour is coal?")))
    assert (checked.kind, checked.examples) == ("preference", 2)
    first = json.loads(checked.training.splitlines()[0])
    assert first == {
        "prompt": [{"role": "user", "content": "What colour is snow?"}],
        "chosen": [{"role": "assistant", "content": "Snow is white."}],
        "rejected": [{"role": "assistant", "content": "Snow is green."}],
    }
    convert_pair(first, "preference")  # what prepare reads


def test_trl_preference_lines_pass_through() -> None:
    line = json.dumps({"prompt": "Sky?", "chosen": " Blue.", "rejected": " Red."})
    assert check_file(jsonl(line)).kind == "preference"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([chat_line(), "{not json", chat_line()], "file line 2: not JSON"),
        ([dpo_line(), '{"prompt": "x", "chosen": "y"}'], "file line 2: missing rejected"),
        ([chat_line(), dpo_line()], "file line 2: a preference example in a file of supervised"),
        (
            [chat_line(), '{"messages": [{"role": "user", "content": "hi"}]}'],
            "file line 2: no assistant message",
        ),
        (
            ['{"messages": [{"role": "user", "content": "hi"}]}', chat_line()],
            "file line 2: no assistant message",
        ),
        (
            ['{"messages": [{"role": "robot", "content": "hi"}]}'],
            "file line 1: unknown role 'robot'",
        ),
        (['{"text": "hi"}'], "file line 1: neither a chat example"),
        (["[1, 2]"], "file line 1: expected a JSON object, got list"),
        (
            ['{"input": {"messages": []}, "preferred_output": []}'],
            "file line 1: missing non_preferred_output",
        ),
        (
            [
                json.dumps(
                    {
                        "input": {"messages": [{"role": "user", "content": "q"}]},
                        "preferred_output": [{"role": "assistant", "content": "a"}],
                        "non_preferred_output": [{"role": "assistant", "content": "a"}],
                    }
                )
            ],
            "file line 1: identical completions",
        ),
        (["", "  "], "file: no examples"),
    ],
)
def test_a_bad_file_is_refused_naming_its_line(lines: list[str], message: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_file(jsonl(*lines))
    assert refused.value.status == 400
    assert refused.value.param == "file"
    assert refused.value.message.startswith(message), refused.value.message


def test_only_fine_tune_files_are_served_and_text_must_be_utf8() -> None:
    with pytest.raises(ApiError, match="purpose 'batch' is not served"):
        check_file(jsonl(chat_line()), "batch")
    with pytest.raises(ApiError, match="not UTF-8"):
        check_file(b"\xff\xfe")


def test_the_filesystem_store_keeps_files_per_namespace(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "kubetune-files")
    meta = StoredFile("file-" + "a" * 24, 5, 1_700_000_000, "x.jsonl", "fine-tune", "supervised", 1)
    store.put("team-a", meta, b"upload", b"training")
    assert store.get("team-a", meta.id) == meta
    assert store.get("team-b", meta.id) is None  # another namespace's file does not exist
    assert store.get("team-a", "../../etc") is None  # ids never become paths
    assert store.content("team-a", meta.id) == b"upload"
    assert [f.id for f in store.list("team-a")] == [meta.id]
    assert store.training_source("team-a", meta.id) == (
        f"pvc://kubetune-files/team-a/{meta.id}/training.jsonl"
    )
    FileObject.model_validate(meta.openai(), strict=True)
    assert store.delete("team-a", meta.id)
    assert store.list("team-a") == [] and not store.delete("team-a", meta.id)
