"""The real tokenizers the tests use (tests/support/vocabularies.py) give the token ids the
original Hugging Face tokenizers give, for every reference line llama.cpp ships with them."""

from __future__ import annotations

import pytest

from tests.support.vocabularies import FAITHFUL, UNFAITHFUL, reference_cases, vocabulary


@pytest.mark.parametrize("name", FAITHFUL)
def test_vocabulary_gives_every_reference_line(name: str) -> None:
    tokenizer = vocabulary(name)
    cases = reference_cases(name)
    assert len(cases) >= 46
    wrong = [
        text for text, ids in cases if tokenizer(text, add_special_tokens=False)["input_ids"] != ids
    ]
    assert wrong == []


@pytest.mark.parametrize("name", sorted(UNFAITHFUL))
def test_unfaithful_vocabulary_still_differs(name: str) -> None:
    """When transformers reads one of these right, move it to FAITHFUL."""
    tokenizer = vocabulary(name)
    assert any(
        tokenizer(text, add_special_tokens=False)["input_ids"] != ids
        for text, ids in reference_cases(name)
    ), UNFAITHFUL[name]
