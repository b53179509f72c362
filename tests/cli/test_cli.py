"""The `kubetune` command line, run as users run it (a real subprocess for the entry point)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from kubetune.cli import app
from tests.support.factories import REPO, make_job

runner = CliRunner()
TINY = str(REPO / "examples" / "tiny.yaml")


def write(tmp_path: Path, doc: object) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_validate_accepts_examples_and_shows_effective_batch() -> None:
    result = runner.invoke(
        app, ["validate", str(REPO / "examples" / "seed2-glaive-chatml-lora.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "valid qwen3-4b-glaive-lora" in result.output
    assert "effective batch 4 × 2 × 8 = 64" in result.output


def test_validate_names_the_security_opt_ins_and_the_fabric(tmp_path: Path) -> None:
    seed5 = runner.invoke(
        app, ["validate", str(REPO / "examples" / "seed5-llama3-qlora-xlam-multinode.yaml")]
    )
    assert seed5.exit_code == 0, seed5.output
    assert "effective batch 4 × 8 × 16 = 512" in seed5.output
    assert "fabric infiniband" in seed5.output
    assert "loosens security: IPC_LOCK capability" in seed5.output
    both = make_job(gpus=8, **{"spec.security.ipcLock": True, "spec.network.hostNetwork": True})
    result = runner.invoke(app, ["validate", write(tmp_path, both)])
    assert "loosens security: IPC_LOCK capability, hostNetwork" in result.output
    plain = runner.invoke(app, ["validate", TINY])
    assert "loosens security" not in plain.output and "fabric" not in plain.output


def test_validate_names_each_field_and_exits_non_zero(tmp_path: Path) -> None:
    # Field errors first; cross-field rules run once every field is valid on its own.
    doc = make_job(**{"spec.training.maxLength": 8, "spec.extra": 1})
    result = runner.invoke(app, ["validate", write(tmp_path, doc)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert any("spec.training.maxLength:" in line for line in lines)
    assert any("spec.extra: unknown field" in line for line in lines)
    doc = make_job(**{"spec.method.type": "qlora", "spec.training.precision": "fp16"})
    result = runner.invoke(app, ["validate", write(tmp_path, doc)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 2
    assert "spec.method.quantization: required when method.type is qlora" in lines[0]
    assert "spec.training.precision: fp16 mixed precision needs GPUs" in lines[1]


def test_multi_document_errors_name_the_document(tmp_path: Path) -> None:
    good, bad = make_job(), make_job(**{"metadata.name": "second", "spec.distributed.nodes": 0})
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all([good, bad]))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "second: spec.distributed.nodes:" in result.output


def test_render_prints_nothing_for_an_invalid_job(tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", write(tmp_path, make_job(nodes=0))])
    assert result.exit_code == 1
    assert "kind:" not in result.stdout


def test_render_json_is_a_list() -> None:
    result = runner.invoke(app, ["render", TINY, "-o", "json"])
    assert result.exit_code == 0, result.output
    kinds = [o["kind"] for o in json.loads(result.stdout)["items"]]
    assert kinds == [
        "PersistentVolumeClaim",
        "ConfigMap",
        "ServiceAccount",
        "RoleBinding",
        "PyTorchJob",
    ]


def test_render_takes_a_default_image() -> None:
    result = runner.invoke(
        app,
        [
            "render",
            str(REPO / "examples" / "seed2-glaive-chatml-lora.yaml"),
            "--image",
            "registry.local/trainer:dev",
        ],
    )
    assert "image: registry.local/trainer:dev" in result.stdout


def test_bad_yaml_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed\n")
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 1 and "not valid YAML" in result.output
    assert runner.invoke(app, ["validate", str(tmp_path / "none.yaml")]).exit_code == 2


@pytest.mark.parametrize(
    "command", [["--help"], ["render", "--help"], ["validate", "--help"], ["crd", "--help"]]
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, command)
    assert result.exit_code == 0 and "Usage" in result.output


def test_console_script_reads_standard_input() -> None:
    exe = Path(sys.executable).with_name("kubetune")
    doc = (REPO / "examples" / "tiny.yaml").read_text()
    proc = subprocess.run(
        [str(exe), "render", "-"], input=doc, capture_output=True, text=True, check=True
    )
    assert "kind: PyTorchJob" in proc.stdout
    crd = subprocess.run([str(exe), "crd"], capture_output=True, text=True, check=True)
    assert crd.stdout == (REPO / "manifests" / "crd" / "finetunejobs.kubetune.io.yaml").read_text()


def test_validate_takes_files_and_folders_like_kubectl_apply(tmp_path: Path) -> None:
    # Every example in one call, as `kubetune validate examples/*.yaml` or `examples/`.
    examples = sorted(str(p) for p in (REPO / "examples").glob("*.yaml"))
    by_files = runner.invoke(app, ["validate", *examples])
    by_folder = runner.invoke(app, ["validate", str(REPO / "examples")])
    assert by_files.exit_code == 0, by_files.output
    assert by_folder.output == by_files.output
    assert by_files.output.count("valid ") == sum(
        len([d for d in yaml.safe_load_all(Path(p).read_text()) if d]) for p in examples
    )


def test_validate_reports_every_bad_file_and_renders_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(make_job(nodes=0)))
    (tmp_path / "b.yml").write_text(yaml.safe_dump(make_job(**{"spec.extra": 1})))
    (tmp_path / "c.json").write_text(json.dumps(make_job(**{"metadata.name": "ok"})))
    (tmp_path / "notes.txt").write_text("not a manifest")
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "a.yaml: spec.distributed.nodes" in result.output
    assert "b.yml: spec.extra: unknown field" in result.output
    assert "notes.txt" not in result.output
    rendered = runner.invoke(app, ["render", str(tmp_path / "c.json"), str(tmp_path / "a.yaml")])
    assert rendered.exit_code == 1 and "kind:" not in rendered.stdout


def test_validate_missing_path_or_empty_folder(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["validate", TINY, str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "nope.yaml: no such file or folder" in missing.output
    empty = runner.invoke(app, ["validate", str(tmp_path)])
    assert empty.exit_code == 1 and "no FineTuneJob found" in empty.output


def test_validate_compiles_an_inline_chat_template(tmp_path: Path) -> None:
    broken = "{% for m in messages %}{{ m.content }"
    doc = make_job(**{"spec.dataset.chatTemplate": {"jinja": broken}})
    result = runner.invoke(app, ["validate", write(tmp_path, doc)])
    assert result.exit_code == 1
    assert "spec.dataset.chatTemplate.jinja: does not compile: line 1:" in result.output
    fine = "{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}"
    doc = make_job(**{"spec.dataset.chatTemplate": {"jinja": fine}})
    assert runner.invoke(app, ["validate", write(tmp_path, doc)]).exit_code == 0


def test_validate_refuses_stages_that_start_from_each_other(tmp_path: Path) -> None:
    def stage(name: str, parent: str | None) -> dict[str, Any]:
        model = {"fromJob": {"name": parent}} if parent else {"source": "hf://org/model"}
        return make_job(**{"metadata.name": name, "spec.model": model})

    path = tmp_path / "chain.yaml"
    # a → b → c → a is a cycle; d starts from c (waits on the cycle, but is not on it);
    # e starts from a job not among the documents, which may exist in the cluster.
    docs = [stage("a", "b"), stage("b", "c"), stage("c", "a"), stage("d", "c"), stage("e", "x")]
    path.write_text(yaml.safe_dump_all(docs))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "spec.model.fromJob.name" in line]
    assert [line.split(":")[0] for line in lines] == ["a", "b", "c"]
    assert "a → b → c → a" in lines[0]
    rendered = runner.invoke(app, ["render", str(path)])
    assert rendered.exit_code == 1 and "kind:" not in rendered.stdout
    path.write_text(yaml.safe_dump_all([stage("a", None), stage("b", "a"), stage("c", "b")]))
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0


def test_validate_refuses_a_stage_naming_itself(tmp_path: Path) -> None:
    doc = make_job(**{"metadata.name": "stage", "spec.model": {"fromJob": {"name": "stage"}}})
    result = runner.invoke(app, ["validate", write(tmp_path, doc)])
    assert result.exit_code == 1
    assert "spec.model.fromJob.name: names this FineTuneJob itself" in result.output


def test_run_refuses_an_output_outside_the_run_folder(tmp_path: Path) -> None:
    doc = make_job(**{"spec.output.path": "../../etc"})
    result = runner.invoke(app, ["run", write(tmp_path, doc)])
    assert result.exit_code == 1
    assert "spec.output.path: must stay inside the workspace volume" in result.output
    assert not (tmp_path.parent.parent / "etc").exists()
