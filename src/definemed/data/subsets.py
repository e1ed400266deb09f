"""Eval subsets that represent the whole set: stratified, not the first N lines of a file.

Files are usually sorted by subject or category, so "the first 80 items" can be three subjects
out of twelve. `stratified_subset` allocates ``n`` over the strata in proportion to their sizes
(largest remainder, so every stratum with a non-zero quota is represented), picks items within
a stratum with a seeded RNG, and keeps the file's order — the same seed gives the same subset.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Per stratum, how many of ``n`` items to take: proportional, largest remainder, ≤ its size.
    With n ≥ the number of strata every stratum gets at least one item."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    quota = {k: n * v / total for k, v in sizes.items()}
    take = {k: min(sizes[k], math.floor(q)) for k, q in quota.items()}
    if n >= len(sizes):  # represent every stratum before distributing the remainder
        for k in take:
            take[k] = max(take[k], 1)
    while sum(take.values()) > n:  # the minimum of one pushed us over: trim where it costs least
        k = max((s for s in take if take[s] > 1), key=lambda s: (take[s] - quota[s], take[s]))
        take[k] -= 1
    order = sorted(sizes, key=lambda k: (-(quota[k] - take[k]), k))
    i = 0
    while sum(take.values()) < n:
        k = order[i % len(order)]
        if take[k] < sizes[k]:
            take[k] += 1
        i += 1
    return take


def stratified_subset(items: Sequence[T], n: int | None, key: Callable[[T], str], seed: int = 0) -> list[T]:
    """``n`` items spread over the strata given by ``key``; all items when n is None or ≥ len."""
    if n is None or n >= len(items):
        return list(items)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[key(item)].append(i)
    take = allocate({k: len(v) for k, v in groups.items()}, n)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for k in sorted(groups):
        idx = groups[k]
        chosen += [idx[j] for j in rng.permutation(len(idx))[: take[k]]]
    return [items[i] for i in sorted(chosen)]
