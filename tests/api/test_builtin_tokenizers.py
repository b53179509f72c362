"""`model.tokenizer`: every name the API accepts is a family the trainer can build, each
family's tokenizer carries one of the built-in chat templates, and a trainer without llama.cpp's
vocabularies says what to do."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from kubetune_api.inputs_spec import BuiltinTemplate, BuiltinTokenizer
from kubetune_trainer.data.vocabularies import FAMILIES
from tests.support.jobs import config_for

BUILTIN = "builtin://tiny-llama"


def test_every_accepted_tokenizer_is_a_family_with_a_builtin_template() -> None:
    assert set(FAMILIES) == set(get_args(BuiltinTokenizer))
    for family in FAMILIES.values():
        assert family.template in get_args(BuiltinTemplate)


def test_missing_vocabularies_fail_prepare_naming_the_field_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without llama.cpp's vocabularies (no gguf extra, no hack/llama-cpp.sh) `prepare` stops
    with a source error (its exit code 1 and one line), before any model is built."""
    from kubetune_trainer.storage.errors import SourceError
    from kubetune_trainer.storage.sources import fetch_model

    monkeypatch.setenv("KUBETUNE_LLAMA_CPP", str(tmp_path / "no-llama.cpp"))
    config = config_for(
        Path("unused"), tmp_path, **{"spec.model": {"source": BUILTIN, "tokenizer": "llama-bpe"}}
    )
    with pytest.raises(SourceError, match=r"^model\.tokenizer is llama-bpe, .*hack/llama-cpp\.sh"):
        fetch_model(config)
    assert not list(tmp_path.glob("cache/models/*"))
