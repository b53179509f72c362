"""Best-fit-decreasing packing of samples into rows of at most `capacity` tokens.

Each row restarts position ids at every sample. The first label of every sample is masked,
so no loss is computed across a boundary (the model predicts token j from token j−1). With
position ids that restart and no attention mask, transformers builds a block-diagonal causal
mask for SDPA/eager and uses variable-length kernels for flash-attention: no token attends
across samples. (With an attention implementation that ignores position ids this would not
hold; kubetune only selects ones that honour them.)
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from kubetune_trainer.data.tokenize import IGNORE, Encoded


def best_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Bins of sample indices; each bin's lengths sum to at most `capacity`.

    O(n log n): bins are kept sorted by remaining space, and each sample (longest first) goes
    into the fullest bin it still fits in.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    space: list[int] = []  # remaining space of each open bin, ascending
    keys: list[tuple[int, int]] = []  # (space, bin id), parallel to `space`
    bins: list[list[int]] = []
    for i in order:
        size = lengths[i]
        if size > capacity:
            raise ValueError(f"sample {i} has {size} tokens, more than the row capacity {capacity}")
        at = bisect.bisect_left(space, size)
        if at == len(space):
            bins.append([i])
            bin_id, left = len(bins) - 1, capacity - size
        else:
            left, bin_id = keys.pop(at)
            space.pop(at)
            bins[bin_id].append(i)
            left -= size
        where = bisect.bisect_left(keys, (left, bin_id))
        keys.insert(where, (left, bin_id))
        space.insert(where, left)
    return bins


def pack(samples: Sequence[Encoded], capacity: int) -> list[dict[str, list[int]]]:
    rows = []
    for bin_ in best_fit_decreasing([len(s.input_ids) for s in samples], capacity):
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in sorted(bin_):
            sample = samples[i]
            ids += sample.input_ids
            labels += [IGNORE, *sample.labels[1:]]
            positions += range(len(sample.input_ids))
        rows.append({"input_ids": ids, "labels": labels, "position_ids": positions})
    return rows


def unpacked(samples: Sequence[Encoded]) -> list[dict[str, list[int]]]:
    return [
        {
            "input_ids": s.input_ids,
            "labels": [IGNORE, *s.labels[1:]],
            "position_ids": list(range(len(s.input_ids))),
        }
        for s in samples
    ]
