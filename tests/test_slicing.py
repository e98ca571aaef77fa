"""How a runner batch is cut into forward passes: contiguous, bounded, and no costlier than any other cut."""

from __future__ import annotations

import itertools
import random

import pytest

from textclf.core.classifier import length_slices


def cost(lengths: list[int], slices: list[tuple[int, int]], overhead: int) -> int:
    return sum(overhead + (stop - first) * lengths[stop - 1] for first, stop in slices)


def all_cuts(lengths: list[int], max_texts: int, max_tokens: int | None = None):
    """Every way to cut sorted texts into contiguous passes of at most max_texts texts and max_tokens
    padded tokens (a single text may exceed max_tokens)."""
    n = len(lengths)
    for mask in itertools.product((False, True), repeat=n - 1):
        bounds = [0, *(i + 1 for i, cut in enumerate(mask) if cut), n]
        slices = list(zip(bounds, bounds[1:]))
        if all(stop - first <= max_texts for first, stop in slices) and within_tokens(lengths, slices, max_tokens):
            yield slices


def within_tokens(lengths: list[int], slices: list[tuple[int, int]], max_tokens: int | None) -> bool:
    """No pass of several texts holds more than max_tokens padded tokens."""
    return all(max_tokens is None or stop - first == 1 or (stop - first) * lengths[stop - 1] <= max_tokens for first, stop in slices)


def test_equal_lengths_share_passes_up_to_the_limit() -> None:
    assert length_slices([20] * 64, max_texts=32, pass_overhead=32) == [(0, 32), (32, 64)]
    assert len(length_slices([20] * 70, max_texts=32, pass_overhead=32)) == 3


def test_a_paragraph_does_not_pad_the_chat_lines() -> None:
    lengths = [12, 14, 15, 16, 128]
    assert length_slices(lengths, max_texts=32, pass_overhead=32) == [(0, 4), (4, 5)]


def test_no_overhead_means_no_padding_at_all() -> None:
    lengths = sorted(random.Random(1).randint(5, 128) for _ in range(40))
    slices = length_slices(lengths, max_texts=32, pass_overhead=0)
    assert all(lengths[first] == lengths[stop - 1] for first, stop in slices)


@pytest.mark.parametrize("seed", range(30))
def test_the_cut_is_contiguous_bounded_and_optimal(seed: int) -> None:
    rng = random.Random(seed)
    n, max_texts, overhead = rng.randint(1, 11), rng.randint(1, 6), rng.choice([0, 4, 32, 200])
    max_tokens = rng.choice([None, 100, 256, 512])
    lengths = sorted(rng.randint(3, 128) for _ in range(n))
    slices = length_slices(lengths, max_texts, overhead, max_tokens)
    assert slices[0][0] == 0 and slices[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))
    assert all(0 < stop - first <= max_texts for first, stop in slices)
    assert within_tokens(lengths, slices, max_tokens)
    assert cost(lengths, slices, overhead) == min(cost(lengths, cut, overhead) for cut in all_cuts(lengths, max_texts, max_tokens))


def test_long_texts_split_into_passes_of_at_most_max_tokens() -> None:
    """32 texts of 256 tokens: one pass of 8,192 tokens took 1 GB and 30 % longer per text on the
    base-size model than passes of 2,048."""
    assert length_slices([256] * 32, max_texts=32, pass_overhead=32, max_tokens=2048) == [(0, 8), (8, 16), (16, 24), (24, 32)]
    assert length_slices([20] * 32, max_texts=32, pass_overhead=32, max_tokens=2048) == [(0, 32)]


def test_a_text_longer_than_max_tokens_still_gets_its_pass() -> None:
    assert length_slices([10, 600, 700], max_texts=32, pass_overhead=32, max_tokens=512) == [(0, 1), (1, 2), (2, 3)]


def test_empty_batch_has_no_passes() -> None:
    assert length_slices([], max_texts=32, pass_overhead=32) == []
