"""Packing efficiency: real tokens ÷ tokens processed, best-fit-decreasing packing against
padding, on a seeded long-tailed length distribution. Target: ≥ 0.98.

    python bench/packing_efficiency.py
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import long_tailed_lengths

from kubetune_trainer.data.packing import best_fit_decreasing

CAPACITY, MICRO, SAMPLES = 2048, 4, 20_000


def padded(lengths: list[int], micro: int, seed: int = 0) -> int:
    """Tokens processed when each micro-batch pads to its longest sample (shuffled order)."""
    order = lengths[:]
    random.Random(seed).shuffle(order)
    return sum(
        max(order[i : i + micro]) * len(order[i : i + micro]) for i in range(0, len(order), micro)
    )


def main() -> None:
    lengths = long_tailed_lengths(SAMPLES, seed=0, cap=CAPACITY)
    real = sum(lengths)
    bins = best_fit_decreasing(lengths, CAPACITY)
    rows = sorted((sum(lengths[i] for i in b) for b in bins), reverse=True)
    random.Random(0).shuffle(rows)
    packed_processed = sum(
        max(rows[i : i + MICRO]) * len(rows[i : i + MICRO]) for i in range(0, len(rows), MICRO)
    )
    fill = real / (len(bins) * CAPACITY)
    packed_eff = real / packed_processed
    padded_eff = real / padded(lengths, MICRO)
    to_max_eff = real / (len(lengths) * CAPACITY)
    print(
        f"samples {SAMPLES}, capacity {CAPACITY}, micro batch {MICRO}, "
        f"mean length {real / SAMPLES:.0f}, max {max(lengths)}"
    )
    print(
        f"kubetune packing (BFD):   rows {len(bins):6d}  row fill {fill:.4f}  "
        f"efficiency {packed_eff:.4f}"
    )
    print(
        f"baseline, pad to longest: batches {-(-SAMPLES // MICRO):4d}  efficiency {padded_eff:.4f}"
    )
    print(f"baseline, pad to max:                     efficiency {to_max_eff:.4f}")
    print(
        f"ratio packed/padded-to-longest: {packed_eff / padded_eff:.2f}x   "
        f"target efficiency >= 0.98: {'met' if packed_eff >= 0.98 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
