"""report.html: one self-contained page about a job — charts, evaluation, checkpoints, data,
spec — that opens offline.

Everything it shows is in the file: the charts' data as JSON, the Vega bundle as an inline
script, the styles inline; nothing is fetched. When the charts have drawn, the page sets
`data-charts="rendered"` on <body> (`failed`, with the error on the console, if one could not),
which is what a browser waits for before a screenshot.
"""

from __future__ import annotations

import json
import time
from html import escape
from importlib.resources import files
from typing import Any

import yaml

from kubetune_trainer import __version__
from kubetune_trainer.report.bundle import vega_bundle, versions
from kubetune_trainer.report.charts import charts
from kubetune_trainer.report.run_folder import RunFolder

STYLE = (files("kubetune_trainer.report") / "report.css").read_text(encoding="utf-8")

DRAW = """
const specs = JSON.parse(document.getElementById("chart-specs").textContent);
Promise.all(Object.entries(specs).map(([id, spec]) =>
  vegaEmbed("#chart-" + id, spec, {actions: false, renderer: "svg"})))
  .then(() => { document.body.dataset.charts = "rendered"; },
        (error) => { document.body.dataset.charts = "failed"; console.error(error); });
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="n">{value:.5g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="n">{value:,}</td>'
    return f"<td>{escape('' if value is None else str(value))}</td>"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _script_json(value: Any) -> str:
    """JSON safe inside <script>: no `</` can close the element."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def header(run: RunFolder) -> str:
    config, manifest = run.config, run.manifest or {}
    training = config.get("training", {})
    progress = run.progress or {}
    facts = [
        f"base model {config.get('model', {}).get('source') or config['paths'].get('model')}",
        f"{config.get('method', {}).get('type')} · {training.get('objective', 'sft')}",
        f"step {progress.get('step', '-')} of {progress.get('totalSteps', '-')}",
    ]
    if progress.get("loss") is not None:
        facts.append(f"latest loss {progress['loss']:.4f}")
    if manifest.get("finishedAt"):
        facts.append(f"finished {manifest['finishedAt']}")
    phase = run.phase()
    note = (run.run_state or {}).get("note")
    return (
        f"<h1>{escape(run.name)} <span class='phase {escape(phase)}'>{escape(phase)}</span></h1>"
        f"<div class='sub'>{escape(' · '.join(facts))}</div>"
        + (f"<p class='note'>{escape(str(note))}</p>" if note else "")
    )


def charts_section(specs: dict[str, Any]) -> str:
    if not specs:
        return "<h2>Training curves</h2><p>No metrics were logged yet.</p>"
    cards = "".join(
        f"<div class='card'><div class='chart' id='chart-{escape(i)}'></div></div>" for i in specs
    )
    return f"<h2>Training curves</h2><div class='grid'>{cards}</div>"


def evaluation_section(run: RunFolder) -> str:
    evals = [line for line in run.metrics if "eval_loss" in line]
    parts = ["<h2>Evaluation</h2>"]
    # (metrics.jsonl key, column): the loss and accuracy, and DPO's rewards when it has them
    columns = [("eval_loss", "held-out loss"), ("eval_mean_token_accuracy", "mean token accuracy")]
    columns += [
        (key, name)
        for key, name in (
            ("eval_rewards/accuracies", "reward accuracy"),
            ("eval_rewards/margins", "reward margin"),
        )
        if any(key in e for e in evals)
    ]
    if evals:
        rows = [[e["step"], *(e.get(key) for key, _ in columns)] for e in evals]
        parts.append(table(["step", *(name for _, name in columns)], rows))
    evaluation = run.evaluation
    trained, base = evaluation.get("toolCalls"), evaluation.get("baselineToolCalls")
    if trained:
        names = [k for k in trained if k not in ("turns", "toolTurns", "noToolTurns")]
        rows = [[k, trained.get(k), (base or {}).get(k)] for k in names]
        parts.append("<h3>Tool calls on the held-out conversations</h3>")
        parts.append(table(["score", "trained", "base" if base else "base (not scored)"], rows))
    if evaluation.get("error"):
        parts.append(f"<p>Tool-call scoring: {escape(str(evaluation['error']))}</p>")
    if len(parts) == 1:
        parts.append("<p>No held-out data (set dataset.evalFraction or dataset.validation).</p>")
    return "".join(parts)


def checkpoints_section(run: RunFolder) -> str:
    kept = (run.progress or {}).get("checkpointsKept") or []
    if not kept:
        return "<h2>Checkpoints</h2><p>No complete checkpoint is kept.</p>"
    rows = [
        [
            c.get("step"),
            (c.get("metrics") or {}).get("train_loss"),
            (c.get("metrics") or {}).get("valid_loss"),
            (c.get("metrics") or {}).get("valid_mean_token_accuracy"),
            c.get("path"),
        ]
        for c in kept
    ]
    heads = ["step", "train loss", "held-out loss", "held-out accuracy", "path"]
    return "<h2>Checkpoints</h2>" + table(heads, rows)


def data_section(run: RunFolder) -> str:
    report = run.data_report
    if not report:
        return "<h2>Data</h2><p>No preparation report (prepare has not run).</p>"
    sources = [
        [
            s.get("source"),
            s.get("records"),
            s.get("samples"),
            s.get("skipped"),
            ", ".join(f"{k}: {v}" for k, v in (s.get("skippedReasons") or {}).items()),
            "; ".join(s.get("firstErrors") or []),
        ]
        for s in report.get("sources", [])
    ]
    parts = [
        "<h2>Data</h2>",
        table(
            ["source", "records", "samples", "skipped", "skipped by reason", "first skipped"],
            sources,
        ),
    ]
    splits = [
        [
            name,
            split.get("samples"),
            split.get("rows"),
            split.get("tokens"),
            split.get("packingEfficiency"),
        ]
        for name in ("train", "eval")
        if (split := report.get(name))
    ]
    parts.append(table(["split", "samples", "rows", "tokens", "packing efficiency"], splits))
    stats = report.get("stats") or {}
    if stats:
        parts.append(table(list(stats), [list(stats.values())]))
    if run.samples_html:
        parts.append(
            "<h3>The first samples, as the model sees them (trained text highlighted)</h3>"
        )
        parts.append(f"<div class='samples'>{run.samples_html}</div>")
    return "".join(parts)


def spec_section(run: RunFolder) -> str:
    shown = run.job if run.job is not None else run.config
    what = "FineTuneJob" if run.job is not None else "trainer config (the spec as resolved)"
    text = yaml.safe_dump(shown, sort_keys=False)
    return f"<h2>Spec</h2><p class='sub'>The {what}.</p><pre>{escape(text)}</pre>"


def render_page(run: RunFolder) -> str:
    specs = charts(run.metrics)
    outputs = (run.manifest or {}).get("outputs") or {}
    where = table(["output", "path"], [[k, v] for k, v in outputs.items() if k != "gguf"])
    made = ", ".join(f"{k} {v}" for k, v in versions().items())
    made_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = "".join(
        [
            header(run),
            charts_section(specs),
            evaluation_section(run),
            checkpoints_section(run),
            "<h2>Outputs</h2>" + (where if outputs else "<p>No outputs yet.</p>"),
            data_section(run),
            spec_section(run),
            f"<footer>kubetune {escape(__version__)} · {escape(made_at)}"
            f" · charts: {escape(made)}, embedded</footer>",
        ]
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(run.name)} · kubetune report</title><style>{STYLE}</style>"
        f"<script>{vega_bundle()}</script></head>"
        f"<body data-charts='pending'><main>{body}</main>"
        f"<script type='application/json' id='chart-specs'>{_script_json(specs)}</script>"
        f"<script>{DRAW}</script></body></html>"
    )
