"""Writes tiny-chat.jsonl: a learnable toy chat set (arithmetic and word facts) for tiny.yaml.

Deterministic: the same file every run. `python examples/data/make_tiny_chat.py` rewrites it.
"""

import json
import random
from pathlib import Path
from typing import Any

COLOURS = {"sky": "blue", "grass": "green", "snow": "white", "coal": "black", "blood": "red"}


def records(n: int = 400, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 3 == 0:
            thing, colour = rng.choice(sorted(COLOURS.items()))
            turns = [
                ("user", f"What colour is {thing}?"),
                ("assistant", f"{thing.capitalize()} is {colour}."),
            ]
        else:
            a, b = rng.randint(0, 9), rng.randint(0, 9)
            turns = [("user", f"What is {a} plus {b}?"), ("assistant", f"{a} plus {b} is {a + b}.")]
        messages = [{"role": r, "content": c} for r, c in turns]
        if i % 5 == 0:
            messages.insert(0, {"role": "system", "content": "Answer in one short sentence."})
        out.append({"messages": messages})
    return out


if __name__ == "__main__":
    path = Path(__file__).with_name("tiny-chat.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in records()))
    print(f"wrote {path}")
