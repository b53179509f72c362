"""`kubetune status|watch|logs` against a `kubetune run` folder (written by hand here; a real
run's folder is read in tests/trainer/test_report_browser.py), and the metric history file."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

from typer.testing import CliRunner

from kubetune.cli import app
from kubetune.observe.folder import folder_view
from kubetune_api.status import FineTuneJobStatus
from kubetune_trainer.report.metrics_log import METRICS_FILE, metrics_line, read_metrics
from tests.support.run_folders import metric_lines, write_run_folder

runner = CliRunner()


def test_status_json_is_a_finetunejob_with_the_history(tmp_path: Path) -> None:
    job_dir = write_run_folder(tmp_path, nodes=2, steps=40)
    result = runner.invoke(app, ["status", str(tmp_path), "-o", "json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert (view["apiVersion"], view["kind"]) == ("kubetune.io/v1alpha1", "FineTuneJob")
    assert view["metadata"]["name"] == "observed" and view["spec"]["distributed"]["nodes"] == 2
    status = view["status"]
    FineTuneJobStatus.model_validate(status)  # the cluster's status shape, field for field
    assert status["phase"] == "Succeeded"
    assert status["progress"]["step"] == 40
    # every logged step once, an evaluation merged into the training point of its step
    points = status["metrics"]["points"]
    assert [p["step"] for p in points] == [1, 5, 10, 15, 20, 25, 30, 35, 40]
    assert "evalLoss" in points[4] and "evalLoss" in points[8] and "evalLoss" not in points[5]
    assert status["outputs"]["adapter"] == str(job_dir / "output" / "adapter")


def test_status_screen_names_phase_progress_and_checkpoints(tmp_path: Path) -> None:
    write_run_folder(tmp_path)
    result = runner.invoke(app, ["status", str(tmp_path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "observed  Succeeded" in result.output
    assert "40/40 (100%)" in result.output
    assert "• train loss" in result.output and "◆ held-out loss" in result.output
    assert re.search(r"^checkpoints\s*\n.*train loss.*\n 40 +\d+\.\d+", result.output, re.M)


def test_status_of_a_folder_that_is_not_a_run_says_what_it_expected(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a kubetune run folder" in result.output and "trainer.yaml" in result.output


def test_logs_prefix_every_line_with_its_rank(tmp_path: Path) -> None:
    write_run_folder(tmp_path, nodes=2)
    every = runner.invoke(app, ["logs", str(tmp_path)]).output.splitlines()
    assert every == [
        "[rank 0 prepare] prepared 100 samples",
        "[rank 0 prepare] fingerprint abc",
        "[rank 0] node 0 line 1",
        "[rank 0] node 0 line 2",
        "[rank 1] node 1 line 1",
        "[rank 1] node 1 line 2",
    ]
    one = runner.invoke(app, ["logs", str(tmp_path), "--rank", "1", "--container", "pytorch"])
    assert one.output.splitlines() == ["[rank 1] node 1 line 1", "[rank 1] node 1 line 2"]
    bad = runner.invoke(app, ["logs", str(tmp_path), "--container", "trainer"])
    assert bad.exit_code == 2 and "--container: expected prepare or pytorch" in bad.output


def test_logs_follow_until_the_run_ends(tmp_path: Path) -> None:
    """Lines written while following arrive, and following stops once run.json says the run
    ended (the run's own signal), with every line written before it."""
    job_dir = write_run_folder(tmp_path, nodes=1, phase="Training")
    first_read = threading.Event()
    lines: list[str] = []

    def follow() -> None:
        from kubetune.observe.folder import FINAL, folder_view
        from kubetune.observe.logs import folder_lines

        def finished() -> bool:
            first_read.set()
            return folder_view(job_dir)["status"]["phase"] in FINAL

        lines.extend(folder_lines(job_dir, 0, "pytorch", True, finished))

    reader = threading.Thread(target=follow)
    reader.start()
    assert first_read.wait(30)
    with (job_dir / "logs" / "node-0.log").open("a") as log:
        log.write("step 40/40 loss 0.5\npartial line without newline")
    (job_dir / "run.json").write_text(json.dumps({"phase": "Succeeded", "exitCode": 0}))
    reader.join(30)
    assert not reader.is_alive()
    assert lines == [
        "[rank 0] node 0 line 1",
        "[rank 0] node 0 line 2",
        "[rank 0] step 40/40 loss 0.5",
        "[rank 0] partial line without newline",
    ]


def test_watch_exits_with_the_outcome(tmp_path: Path) -> None:
    write_run_folder(tmp_path / "ok", phase="Succeeded")
    write_run_folder(tmp_path / "bad", phase="Failed")
    ok = runner.invoke(app, ["watch", str(tmp_path / "ok"), "-o", "json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["status"]["phase"] == "Succeeded"
    bad = runner.invoke(app, ["watch", str(tmp_path / "bad"), "-o", "json"])
    assert bad.exit_code == 1
    failed = json.loads(bad.output)["status"]
    assert failed["conditions"][0]["message"] == "exited with code 3; see logs/node-1.log"


def test_watch_follows_a_running_job_to_its_end(tmp_path: Path) -> None:
    job_dir = write_run_folder(tmp_path, phase="Training")
    from kubetune.observe.folder import folder_changes

    changes = folder_changes(tmp_path, poll_seconds=0.05)
    assert next(changes)["status"]["phase"] == "Training"
    (job_dir / "run.json").write_text(json.dumps({"phase": "Failed", "exitCode": 3, "log": "x"}))
    assert next(changes)["status"]["phase"] == "Failed"
    assert next(changes, None) is None  # a final phase ends the stream


def test_metrics_history_keeps_the_last_line_of_a_step_and_skips_a_torn_one(tmp_path: Path) -> None:
    path = tmp_path / METRICS_FILE
    lines = metric_lines(20, every=5, eval_every=10)
    again = {**lines[2], "loss": 0.123}  # step 10 logged again after a resume
    text = "".join(json.dumps(x) + "\n" for x in [*lines, again]) + '{"step": 25, "lo'
    path.write_text(text)
    read = read_metrics(path)
    assert [(x["step"], "eval_loss" in x) for x in read] == [
        (1, False),
        (5, False),
        (10, False),
        (10, True),
        (15, False),
        (20, False),
        (20, True),
    ]
    assert read[2]["loss"] == 0.123
    assert read_metrics(tmp_path / "missing.jsonl") == []


def test_a_line_per_logged_step_and_none_for_the_run_summary() -> None:
    logs = {"loss": 1.5, "grad_norm": 0.5, "learning_rate": 1e-4, "epoch": 0.5}
    line = metrics_line(logs, 10, 0.5, 1_800_000_000.0, 1234.56)
    assert line == {
        "step": 10,
        "epoch": 0.5,
        "time": 1_800_000_000.0,
        "loss": 1.5,
        "grad_norm": 0.5,
        "learning_rate": 1e-4,
        "tokens_per_second": 1234.6,
    }
    evaluation = metrics_line({"eval_loss": 1.2, "eval_runtime": 3.0}, 10, 0.5, 0.0, 99.0)
    assert evaluation is not None and "tokens_per_second" not in evaluation
    summary = {"train_runtime": 9.0, "train_loss": 1.4, "epoch": 1.0}
    assert metrics_line(summary, 40, 1.0, 0.0, None) is None


def test_a_workspace_of_several_jobs_asks_for_one(tmp_path: Path) -> None:
    write_run_folder(tmp_path, name="stage-1")
    write_run_folder(tmp_path, name="stage-2")
    result = runner.invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 2 and "holds 2 jobs; name one of them" in result.output
    one = runner.invoke(app, ["status", str(tmp_path / "jobs" / "stage-2"), "-o", "json"])
    assert json.loads(one.output)["metadata"]["name"] == "stage-2"


def test_report_of_a_cluster_job_is_made_from_its_status(tmp_path: Path) -> None:
    """The object as the API server returns it (its status built here by the folder view of a
    hand-written run): the page draws the status' points and says where the full report is."""
    from kubetune.observe.cluster_report import write_cluster_report
    from kubetune.observe.folder import folder_view

    write_run_folder(tmp_path / "run")
    job = folder_view(tmp_path / "run")
    job["status"]["outputs"]["report"] = "/workspace/jobs/observed/output/report.html"
    target = write_cluster_report(job, tmp_path / "observed.html")
    page = target.read_text()
    specs = json.loads(page.split("id='chart-specs'>")[1].split("</script>")[0])
    points = job["status"]["metrics"]["points"]
    assert len(specs["loss"]["data"]["values"]) == sum(
        ("loss" in p) + ("evalLoss" in p) for p in points
    )
    assert "downsampled history (9 points)" in page
    assert "/workspace/jobs/observed/output/report.html" in page


def test_a_manifest_written_during_training_means_succeeded_an_older_one_does_not(
    tmp_path: Path,
) -> None:
    """The trainer writes its report before `kubetune run` records the end: a manifest newer
    than run.json's Training is this run's; one older (a rerun's folder) is not."""
    job_dir = write_run_folder(tmp_path, phase="Succeeded")
    manifest = job_dir / "output" / "manifest.json"
    state = job_dir / "run.json"
    state.write_text(json.dumps({"phase": "Training"}))
    os.utime(manifest, (state.stat().st_mtime + 1,) * 2)
    assert folder_view(tmp_path)["status"]["phase"] == "Succeeded"
    os.utime(manifest, (state.stat().st_mtime - 10,) * 2)
    assert folder_view(tmp_path)["status"]["phase"] == "Training"


def test_a_job_name_without_a_cluster_says_how_to_get_one(tmp_path: Path) -> None:
    """Not a folder, so a FineTuneJob's name: with no kubeconfig the real client's error is
    turned into one line naming the fix."""
    env = {"KUBECONFIG": str(tmp_path / "missing-kubeconfig"), "HOME": str(tmp_path)}
    result = runner.invoke(app, ["status", "no-such-job"], env=env)
    assert result.exit_code == 2
    assert result.output.startswith("no cluster: ") and "KUBECONFIG" in result.output


def test_watch_draws_the_screen_and_exits_with_the_outcome(tmp_path: Path) -> None:
    write_run_folder(tmp_path, phase="Failed")
    result = runner.invoke(app, ["watch", str(tmp_path)], env={"COLUMNS": "120"})
    assert result.exit_code == 1
    assert "observed  Failed  TrainingFailed: exited with code 3" in result.output


def test_a_line_torn_by_a_killed_writer_costs_only_itself(tmp_path: Path) -> None:
    from kubetune_trainer.report.metrics_log import MetricsLog

    (tmp_path / METRICS_FILE).write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    MetricsLog(tmp_path).append({"step": 2, "loss": 1.5})
    MetricsLog(tmp_path).append({"step": 3, "loss": 1.0})
    assert [(x["step"], x["loss"]) for x in read_metrics(tmp_path / METRICS_FILE)] == [
        (1, 2.0),
        (2, 1.5),
        (3, 1.0),
    ]
