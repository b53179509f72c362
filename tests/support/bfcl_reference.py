"""The Berkeley Function-Calling Leaderboard's own AST checker, as an independent reference for
the tool-call scorer.

`bfcl/upstream/` holds files of github.com/ShishirPatil/gorilla at commit 6ea57973 (2026-03-23,
the commit of bfcl-eval 2026.3.23 on PyPI), byte for byte (Apache 2.0, `bfcl/upstream/LICENSE`):

- `bfcl_eval/eval_checker/ast_eval/ast_checker.py` and `bfcl_eval/constants/enums.py`, from
  `berkeley-function-call-leaderboard/` — the checker that decides whether a decoded model
  output is a valid call of a simple, multiple, parallel or parallel-multiple case;
- `data/`: the first 25 rows of `bfcl_eval/data/BFCL_v4_{simple_python,multiple,parallel,
  parallel_multiple}.json` (the questions and their function descriptions) and of
  `bfcl_eval/data/possible_answer/` (`possible_answer_…`: each parameter's accepted values).

Why vendored and not installed: bfcl-eval pins numpy 1.26.4 (the training stack needs numpy 2)
and about thirty model-provider clients. `ast_checker` imports the model-handler config only for
`convert_func_name` (providers that rename `a.b` to `a_b`), and the Java/JavaScript type
converters only for those languages: those three imports get stand-ins here (no renaming, no
Java/JavaScript), and the checker's own code runs unchanged. `load()` refuses a file whose git
blob id is not upstream's, so an edit to the vendored copy fails the test.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

UPSTREAM = Path(__file__).parent / "bfcl" / "upstream"
COMMIT = "6ea57973c7a6097fd7c5915698c54c17c5b1b6c8"
# `git rev-parse 6ea57973:berkeley-function-call-leaderboard/<path>`
BLOBS = {
    "bfcl_eval/eval_checker/ast_eval/ast_checker.py": "160fd75cfc8b2b7ef9f83a244f81da0fe0244e39",
    "bfcl_eval/constants/enums.py": "7400315f045419d4a8a28525f3999c1844f5e9af",
}
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")
MODEL_NAME = "kubetune"  # the checker's model name: no provider renaming of dotted names


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def _not_vendored(*_: Any, **__: Any) -> Any:
    raise NotImplementedError("the Java/JavaScript type converters are not vendored")


def load() -> types.ModuleType:
    """BFCL's `ast_checker` module, run from the vendored upstream file."""
    for relative, blob in BLOBS.items():
        got = git_blob_id((UPSTREAM / relative).read_bytes())
        assert got == blob, f"{relative} differs from upstream {COMMIT[:8]} ({got} != {blob})"
    path = UPSTREAM / "bfcl_eval"
    packages = ["bfcl_eval", "bfcl_eval.constants", "bfcl_eval.eval_checker"]
    packages.append("bfcl_eval.eval_checker.ast_eval")
    packages.append("bfcl_eval.eval_checker.ast_eval.type_convertor")
    stand_ins = {
        name: _module(name, __path__=[str(path.joinpath(*name.split(".")[1:]))])
        for name in packages
    }
    config = types.SimpleNamespace(underscore_to_dot=False)
    stand_ins["bfcl_eval.constants.model_config"] = _module(
        "bfcl_eval.constants.model_config", MODEL_CONFIG_MAPPING={MODEL_NAME: config}
    )
    stand_ins["bfcl_eval.constants.type_mappings"] = _module(
        "bfcl_eval.constants.type_mappings", JAVA_TYPE_CONVERSION={}, JS_TYPE_CONVERSION={}
    )
    converters = "bfcl_eval.eval_checker.ast_eval.type_convertor."
    stand_ins[converters + "java_type_converter"] = _module(
        converters + "java_type_converter", java_type_converter=_not_vendored
    )
    stand_ins[converters + "js_type_converter"] = _module(
        converters + "js_type_converter", js_type_converter=_not_vendored
    )
    saved = {name: sys.modules.get(name) for name in [*stand_ins, *_real_names()]}
    sys.modules.update(stand_ins)
    try:
        enums = _exec("bfcl_eval.constants.enums", path / "constants" / "enums.py")
        sys.modules["bfcl_eval.constants.enums"] = enums
        checker = _exec(
            "bfcl_eval.eval_checker.ast_eval.ast_checker",
            path / "eval_checker" / "ast_eval" / "ast_checker.py",
        )
    finally:  # the stand-ins do not outlive the load: the module keeps what it imported
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return checker


def _real_names() -> list[str]:
    return ["bfcl_eval.constants.enums", "bfcl_eval.eval_checker.ast_eval.ast_checker"]


def _exec(name: str, file: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def cases(category: str) -> list[dict[str, Any]]:
    """The vendored rows of a category: id, question, function (descriptions) and ground_truth
    (per call, per parameter, the accepted values; "" marks an optional one)."""
    questions = _rows(UPSTREAM / "data" / f"BFCL_v4_{category}.json")
    answers = _rows(UPSTREAM / "data" / f"possible_answer_BFCL_v4_{category}.json")
    by_id = {a["id"]: a for a in answers}
    return [{**q, "ground_truth": by_id[q["id"]]["ground_truth"]} for q in questions]


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
