"""What the template tests share: a tiny tokenizer per model family (trained with `tokenizers`,
holding that family's special tokens, adding BOS where the family's tokenizer does), the
official templates as the model repositories ship them, and conversations in transformers'
own format covering system / no system, multi-turn, tools, parallel calls, tool results and
reasoning."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from kubetune_trainer.data.templates import FAMILIES, official

TRL_TEMPLATES = Path(__import__("trl").__path__[0]) / "chat_templates"

TOKENIZERS: dict[str, dict[str, Any]] = {
    "chatml": {"special": ["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]},
    "llama": {
        "special": [
            "<|begin_of_text|>",
            "<|eot_id|>",
            "<|finetune_right_pad_id|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eom_id|>",
            "<|python_tag|>",
        ],
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
        "pad": "<|finetune_right_pad_id|>",
        "add_bos": True,
    },
    "gemma": {
        "special": ["<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>"],
        "bos": "<bos>",
        "eos": "<eos>",
        "pad": "<pad>",
        "add_bos": True,
    },
    "qwen": {
        "special": [
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<tool_call>",
            "</tool_call>",
            "<tool_response>",
            "</tool_response>",
            "<think>",
            "</think>",
        ],
        "bos": None,
        "eos": "<|im_end|>",
        "pad": "<|endoftext|>",
    },
}
FAMILY_OF = {
    "chatml": "chatml",
    "llama-3": "llama",
    "llama-3.1": "llama",
    "gemma": "gemma",
    "gemma-2": "gemma",
    "gemma-3": "gemma",
    "qwen": "qwen",
    "qwen2.5": "qwen",
    "qwen3": "qwen",
}
# The builtins whose official template has no tool syntax: kubetune's convention applies.
WITH_KUBETUNE_TOOLS = {name for name, (_, tools) in FAMILIES.items() if tools}


@cache
def tokenizer_for(builtin: str) -> Any:
    from kubetune_trainer.storage.tiny import train_tokenizer

    return train_tokenizer(**TOKENIZERS[FAMILY_OF[builtin]], template=builtin)


def official_template(builtin: str) -> str:
    return official(FAMILIES[builtin][0])


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
# (name, messages, tools) in transformers' chat format
CONVERSATIONS: list[tuple[str, list[dict[str, Any]], list[Any] | None]] = [
    (
        "one-turn",
        [
            {"role": "user", "content": "What is 2 plus 3?"},
            {"role": "assistant", "content": "2 plus 3 is 5."},
        ],
        None,
    ),
    (
        "system-multi-turn",
        [
            {"role": "system", "content": "Be short."},
            {"role": "user", "content": "What is 2 plus 3?"},
            {"role": "assistant", "content": "5."},
            {"role": "user", "content": "And 4 plus 4?"},
            {"role": "assistant", "content": "8."},
        ],
        None,
    ),
    (
        "whitespace-around-content",
        [
            {"role": "user", "content": "  What colour is the sky?\n"},
            {"role": "assistant", "content": "\nBlue. \n"},
        ],
        None,
    ),
    (
        "tools-no-system",
        [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": "", "tool_calls": [call("get_weather", city="Oslo")]},
        ],
        [WEATHER],
    ),
    (
        "tools-system-call-result",
        [
            {"role": "system", "content": "You answer with one word."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": "", "tool_calls": [call("get_weather", city="Oslo")]},
            {"role": "tool", "content": '{"temp": -3}'},
            {"role": "assistant", "content": "Cold."},
        ],
        [WEATHER],
    ),
    (
        "parallel-calls-and-results",
        [
            {"role": "system", "content": "Be short."},
            {"role": "user", "content": "Oslo and Lima?"},
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [call("get_weather", city="Oslo"), call("get_weather", city="Lima")],
            },
            {"role": "tool", "content": '{"temp": -3}'},
            {"role": "tool", "content": '{"temp": 19}'},
            {"role": "assistant", "content": "Oslo is cold, Lima is warm."},
        ],
        [WEATHER],
    ),
    (
        "reasoning-two-turns",
        [
            {"role": "user", "content": "What is 2 plus 3?"},
            {"role": "assistant", "content": "5.", "reasoning_content": "two and three make five"},
            {"role": "user", "content": "And 4 plus 4?"},
            {"role": "assistant", "content": "8.", "reasoning_content": "four and four make eight"},
        ],
        None,
    ),
]


def plain_turns(
    messages: list[dict[str, Any]], tools: list[Any] | None, tools_in_first_user: bool = False
) -> list[dict[str, Any]]:
    """kubetune's documented tool convention (docs/trainer.md), written independently of the
    Jinja that implements it: what the official template renders for templates with no tools."""
    block = None
    if tools:
        block = (
            "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
            + "".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools)
            + "\n</tools>\n\nFor each function call, return a json object with function name "
            "and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
        )
    out: list[dict[str, Any]] = []
    messages = copy.deepcopy(messages)
    if block and not tools_in_first_user:
        if messages and messages[0]["role"] == "system":
            messages[0]["content"] += "\n\n" + block
        else:
            out.append({"role": "system", "content": block})
    for message in messages:
        if message["role"] == "tool":
            text = f"<tool_response>\n{message['content']}\n</tool_response>"
            if out and out[-1].get("kt_tool"):
                out[-1]["content"] += "\n" + text
            else:
                out.append({"role": "user", "content": text, "kt_tool": True})
            continue
        if message["role"] == "assistant" and message.get("tool_calls"):
            lines = [message["content"]] if message["content"] else []
            for c in message["tool_calls"]:
                fn = c["function"]
                lines.append(
                    f'<tool_call>\n{{"name": "{fn["name"]}", "arguments": '
                    f"{json.dumps(fn['arguments'], ensure_ascii=False)}}}\n</tool_call>"
                )
            message = {"role": "assistant", "content": "\n".join(lines)}
        elif message["role"] == "user" and block and tools_in_first_user:
            message = {**message, "content": block + "\n\n" + message["content"]}
            block = None
        out.append(message)
    return [{k: v for k, v in m.items() if k != "kt_tool"} for m in out]


def official_input(builtin: str, messages: Any, tools: Any) -> tuple[Any, Any]:
    """What to give the official template so it renders what kubetune should: the conversation
    itself, or for the templates without tool syntax its plain turns when tools are involved."""
    has_tools = bool(tools) or any(m["role"] == "tool" or m.get("tool_calls") for m in messages)
    if builtin in WITH_KUBETUNE_TOOLS and has_tools:
        return plain_turns(messages, tools, tools_in_first_user=builtin == "gemma-2"), None
    return messages, tools
