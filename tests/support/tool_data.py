"""A small learnable tool-calling set: the keyword of the question picks the tool (`weather` →
get_weather, `time` → get_time, a greeting → no call), the city is the argument. Shared by the
trainer test and the end-to-end test through the operator."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Delhi", "Tokyo", "Quito"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    for name in ("get_weather", "get_time")
]

# LoRA targets for the tiny model: its 64-wide output head is the bottleneck, so adapt it too
# (all-linear leaves the head out: the loss stalls near 2.3 instead of falling below 0.1).
PROJECTIONS = [f"{p}_proj" for p in ("q", "k", "v", "o", "gate", "up", "down")] + ["lm_head"]
# The adapter that learns the set (tests/trainer/test_evaluation.py: names right ≥ 80% in 60 steps).
TOOL_LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "targetModules": PROJECTIONS}

# Hermes-style calls without the tool definitions' long preamble: short rows, fast steps. The
# scorer reads it as any template with `<tool_call>` blocks.
COMPACT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}"
    '<tool_call>{"name": "{{ c.function.name }}", "arguments": '
    "{{ c.function.arguments | tojson }}}</tool_call>"
    "{% endfor %}{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tool_conversation(rng: random.Random) -> dict[str, Any]:
    """A question whose keyword picks the tool (or none, for a greeting)."""
    city = rng.choice(CITIES)
    kind = rng.choice(["weather", "time", "hello"])
    reply: dict[str, object]
    if kind == "hello":
        user, reply = f"hello from {city}", {"role": "assistant", "content": "hello"}
    else:
        user = f"what is the {kind} in {city}?"
        call = {"name": f"get_{kind}", "arguments": {"city": city}}
        reply = {"role": "assistant", "tool_calls": [{"type": "function", "function": call}]}
    return {"messages": [{"role": "user", "content": user}, reply], "tools": TOOLS}


def write_tool_set(path: Path, n: int, seed: int, greetings: int | None = None) -> Path:
    """`n` conversations drawn with `seed`; with `greetings`, only the first that many of the
    greetings (no call expected) are kept."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        row = tool_conversation(rng)
        if greetings is not None and "tool_calls" not in row["messages"][-1]:
            if greetings == 0:
                continue
            greetings -= 1
        rows.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
