"""Writes tiny-preference.jsonl: a learnable toy preference set for the DPO stage of
tiny-sft-dpo.yaml, in TRL's conversational layout (explicit prompt).

The chosen reply gives the right sum in the SFT stage's words; the rejected one is off by one or
refuses. Deterministic: `python examples/data/make_tiny_preference.py` rewrites the same file.
"""

import json
import random
from pathlib import Path
from typing import Any


def records(n: int = 200, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        wrong = a + b + rng.choice([-1, 1]) if a + b else 1
        rejected = f"{a} plus {b} is {wrong}." if i % 2 else "I do not know."
        out.append(
            {
                "prompt": [{"role": "user", "content": f"What is {a} plus {b}?"}],
                "chosen": [{"role": "assistant", "content": f"{a} plus {b} is {a + b}."}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return out


if __name__ == "__main__":
    path = Path(__file__).with_name("tiny-preference.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in records()))
    print(f"wrote {path}")
