"""Built-in chat templates: each family's official template, vendored verbatim.

The `.jinja` files in `chat_templates/` are the templates the models ship (sources in
`chat_templates/SOURCES.md`); kubetune renders them with transformers' own
`apply_chat_template`, so the text is what the model is served with. Families whose official
template has no tool syntax (Llama 3.0, Gemma, ChatML) get kubetune's tool rendering
(`kubetune_tools.jinja`) in front of it: it only rewrites tool calls, tool results and tool
definitions into plain turns, and leaves every other conversation untouched.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent / "chat_templates"

# builtin name → (official template file, needs kubetune's tool rendering)
FAMILIES: dict[str, tuple[str, bool]] = {
    "chatml": ("chatml.jinja", True),
    "llama-3": ("llama3.jinja", True),
    "llama-3.1": ("llama3_1.jinja", False),
    "gemma": ("gemma3.jinja", True),  # Gemma 3's: Gemma 2's output plus a folded system prompt
    "gemma-2": ("gemma2.jinja", True),  # refuses system turns: tools open the first user turn
    "gemma-3": ("gemma3.jinja", True),
    "qwen": ("qwen2_5.jinja", False),
    "qwen2.5": ("qwen2_5.jinja", False),
    "qwen3": ("qwen3.jinja", False),
}


def official(filename: str) -> str:
    """A vendored template exactly as its model repository ships it."""
    return (HERE / filename).read_text(encoding="utf-8")


@cache
def builtin_template(name: str) -> str:
    """The template kubetune renders (and exports with the model) for `builtin: name`."""
    filename, with_tools = FAMILIES[name]
    if not with_tools:
        return official(filename)
    setting = "{%- set tools_in_first_user = true -%}\n" if name == "gemma-2" else ""
    return setting + official("kubetune_tools.jinja").rstrip("\n") + official(filename)


BUILTIN_NAMES = tuple(FAMILIES)
