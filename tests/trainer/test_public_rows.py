"""Real rows of public datasets (fixtures/SOURCES.md) convert field by field, and the seed
examples' data renders with its tool schemas and system prompts in the prompt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubetune_trainer.data.formats import convert
from kubetune_trainer.data.tokenize import IGNORE, Encoded, Encoder, Refused
from tests.support import seed_data
from tests.support.factories import EXAMPLES, REPO, example_docs
from tests.support.families import tokenizer_for

FIXTURES = Path(__file__).parent / "fixtures"


def rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines()]


def fn(name: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def test_sharegpt_llamafactory_rows() -> None:
    first, second = rows("sharegpt")
    conversation = convert(first, "sharegpt")
    assert conversation["tools"] == json.loads(first["tools"])  # both schemas, as given
    turns = first["conversations"]
    assert conversation["messages"] == [
        {"role": "user", "content": turns[0]["value"]},
        {"role": "assistant", "content": turns[1]["value"]},
        {"role": "user", "content": turns[2]["value"]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [fn("generate_password", length=12, include_symbols=True)],
        },
        {"role": "tool", "content": turns[4]["value"]},
        {"role": "assistant", "content": turns[5]["value"]},
    ]
    conversation = convert(second, "sharegpt")
    calls = [m["tool_calls"] for m in conversation["messages"] if "tool_calls" in m]
    assert calls == [
        [fn("get_news_headlines", country="United States")],
        [fn("get_news_headlines", country="France")],
    ]
    results = [m["content"] for m in conversation["messages"] if m["role"] == "tool"]
    assert results == [t["value"] for t in second["conversations"] if t["from"] == "observation"]


def test_alpaca_rows() -> None:
    for row in rows("alpaca"):
        prompt = f"{row['instruction']}\n\n{row['input']}" if row["input"] else row["instruction"]
        assert convert(row, "alpaca") == {
            "messages": [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": row["output"]},
            ]
        }


def test_xlam_row_keeps_its_parallel_calls_and_tools() -> None:
    (row,) = rows("xlam")
    assert convert(row, "xlam") == {
        "messages": [
            {"role": "user", "content": row["query"]},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    fn("live_giveaways_by_type", type="beta"),
                    fn("live_giveaways_by_type", type="game"),
                ],
            },
        ],
        "tools": json.loads(row["tools"]),
    }


def test_glaive_row() -> None:
    (row,) = rows("glaive")
    messages = convert(row, "glaive")["messages"]
    assert messages[0] == {
        "role": "system",
        "content": row["system"].removeprefix("SYSTEM:").strip(),  # its schemas are its text
    }
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
    ]
    assert messages[1]["content"] == (
        "I am looking for a book but I can't remember the title. The author's name is George Orwell."
    )
    assert messages[2]["tool_calls"] == [fn("search_books", query="", author="George Orwell")]
    assert json.loads(messages[3]["content"])["results"][1]["title"] == "Animal Farm"
    assert messages[-1]["content"] == (
        "You're welcome! If you need help with anything else, feel free to ask."
    )


def prompt_and_trained(builtin: str, conversation: dict[str, Any]) -> tuple[str, str] | Refused:
    tokenizer = tokenizer_for(builtin)
    (encoded,) = Encoder(tokenizer, ["assistant"], 100_000).encode_batch([conversation])
    if isinstance(encoded, Refused):
        return encoded
    assert isinstance(encoded, Encoded)
    untrained = [
        t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label == IGNORE
    ]
    trained = [
        t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != IGNORE
    ]
    return tokenizer.decode(untrained), tokenizer.decode(trained)


@pytest.mark.parametrize("builtin", ["llama-3", "llama-3.1", "gemma", "chatml", "qwen", "qwen3"])
def test_xlam_tools_reach_the_prompt_with_every_builtin(builtin: str) -> None:
    """Seed 5's case: xlam rows have tools and no system message."""
    (row,) = rows("xlam")
    result = prompt_and_trained(builtin, convert(row, "xlam"))
    if builtin == "llama-3.1":  # its template takes one call per turn: refused, with the reason
        assert isinstance(result, Refused) and "single tool-calls" in result.reason
        return
    assert not isinstance(result, Refused)
    prompt, trained = result
    assert "live_giveaways_by_type" in prompt and "GamerPower API" in prompt
    assert trained.count("live_giveaways_by_type") == 2 and '"beta"' in trained


SEED_DATA = {
    "xlam": seed_data.xlam(n=8).decode(),
    "glaive": seed_data.glaive(n=8).decode(),
    "messages": (REPO / "examples" / "data" / "tiny-chat.jsonl").read_text(),
}
SEED_SOURCES = [
    (path.stem, doc["spec"]["dataset"], source)
    for path in EXAMPLES
    if path.stem.startswith("seed")
    for doc in example_docs(path)
    if doc["spec"].get("dataset")
    for source in doc["spec"]["dataset"]["sources"]
]


@pytest.mark.parametrize(
    ("seed", "dataset", "source"),
    SEED_SOURCES,
    ids=[f"{s[0]}-{s[2]['format']}" for s in SEED_SOURCES],
)
def test_seed_data_renders_its_tools_and_system_prompts(
    seed: str, dataset: dict[str, Any], source: dict[str, Any]
) -> None:
    """Each seed example's data (scaled down as the seed e2e tests do: the same format, rows
    written by tests/e2e/seed_data.py) through the example's own template: every tool schema and
    system prompt is in the prompt, every call in the trained text."""
    template = dataset.get("chatTemplate", {})
    builtin = template.get("builtin", "gemma")
    tokenizer = tokenizer_for(builtin)
    saved = tokenizer.chat_template
    if "jinja" in template:  # seed 4's inline template, on a Gemma tokenizer
        tokenizer.chat_template = template["jinja"]
    try:
        lines = SEED_DATA[source["format"]].splitlines()[:8]
        for line in lines:
            record = json.loads(line)
            conversation = convert(record, source["format"])
            result = prompt_and_trained(builtin, conversation)
            assert not isinstance(result, Refused), result
            prompt, trained = result
            for message in conversation["messages"]:
                if message["role"] == "system":
                    assert message["content"].strip() in prompt
                for call in message.get("tool_calls", []):
                    assert call["function"]["name"] in trained
            for tool in conversation.get("tools") or []:
                schema = tool.get("function", tool)
                assert schema["name"] in prompt and schema["description"] in prompt
    finally:
        tokenizer.chat_template = saved
