"""`model.tokenizer`: every name the API accepts is a family the trainer can build, and each
family's tokenizer carries one of the built-in chat templates."""

from __future__ import annotations

from typing import get_args

from kubetune_trainer.config import BuiltinTemplate, BuiltinTokenizer
from kubetune_trainer.vocabularies import FAMILIES


def test_every_accepted_tokenizer_is_a_family_with_a_builtin_template() -> None:
    assert set(FAMILIES) == set(get_args(BuiltinTokenizer))
    for family in FAMILIES.values():
        assert family.template in get_args(BuiltinTemplate)
