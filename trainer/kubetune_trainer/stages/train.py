"""The built-in trainer: `torchrun -m kubetune_trainer.train --config trainer.yaml`.

`main`: refuse library versions below the floors → load the config → configure tracking
(TensorBoard, W&B) → `run`, which composes the named steps:

    load_prepared          what `prepare` left in the job folder (model path, packed data)
    check_convertible      with gguf in the output formats: llama.cpp's converter accepts the
                           base model's architecture and tokenizer (gguf.py)
    checkpoint_to_resume   the latest complete checkpoint (half-written ones removed)
    build_trainer          model (full | LoRA | QLoRA) in a Trainer (DDP | FSDP | DeepSpeed),
                           with complete-checkpoint rotation, graceful stop and progress
    preflight              an all-reduce bandwidth test in the Trainer's process group, reported
                           as `network` (preflight.py); `preflight: fail` stops a job far below
                           its fabric here
    train                  resuming when there is a checkpoint; eval loss and mean token
                           accuracy at every evalSteps and at the end (evaluation/)
    export                 adapter / merged model / GGUF / manifest (not after a SIGTERM stop)
    evaluate_tool_calls    generation-based tool-call scores of the exported model (and the
                           base), reported; a failure here never touches the outputs
    write_job_report       metrics.jsonl into the outputs, and report.html (job_report.py)
    upload_outputs         with output.uri, the outputs to S3, manifest.json last (object_upload.py)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from kubetune_api.config import TrainerConfig, gguf_files
from kubetune_trainer.data.prepared import NotPrepared, Prepared, load_prepared
from kubetune_trainer.runtime import versions
from kubetune_trainer.runtime.checkpoints import latest_complete, record_resume, remove_incomplete
from kubetune_trainer.runtime.log import fail, log
from kubetune_trainer.stages.failures import (
    EXIT_REWARD,
    EXIT_VOLUME_FULL,
    reward_failure,
    volume_full,
    volume_full_message,
)
from kubetune_trainer.storage.object_checks import ObjectStoreError
from kubetune_trainer.training.arguments import configure_tracking, training_arguments

EXIT_SIGTERM = 143  # 128 + SIGTERM: retryable under the PyTorchJob's ExitCode policy
# output.uri refused the upload after boto3's own retries (AccessDenied, NoSuchBucket, …); the
# outputs stay on the volume. 1-127: not retried, the status names the bucket, key and code
EXIT_UPLOAD = 6


def checkpoint_to_resume(config: TrainerConfig) -> Path | None:
    """The latest complete checkpoint, after restoring the bucket's when it is newer
    (`output.uploadCheckpoints`, checkpoint_store.py) and removing any a crash left
    half-written; rank 0 records the resume and the steps it redoes (checkpoints.record_resume)."""
    from kubetune_trainer.storage.checkpoint_store import restore

    job = Path(config.paths.job)
    root = job / "checkpoints"
    restore(config, root)
    for stale in remove_incomplete(root):
        log(f"removed incomplete checkpoint {stale.name} (a crash while saving)")
    resume = latest_complete(root)
    if int(os.environ.get("RANK", "0")) == 0 and (entry := record_resume(job, resume)):
        log(
            f"resuming from step {entry['fromStep']} after reaching step {entry['reachedStep']}: "
            f"{entry['stepsRedone']} steps redone"
        )
    return resume


def progress_sinks(config: TrainerConfig) -> Any:
    """Where progress and the preflight report go: progress.json, and the status in a pod."""
    from kubetune_trainer.runtime.progress import FileSink
    from kubetune_trainer.runtime.reporter import Sinks, StatusSink

    return Sinks(FileSink(config.paths.job), StatusSink.from_environment())


def build_trainer(
    config: TrainerConfig, prepared: Prepared, sinks: Any, uploader: Any = None
) -> tuple[Any, Any]:
    """The model (full | LoRA | QLoRA) in a transformers Trainer with kubetune's callbacks:
    complete-checkpoint rotation (handing each checkpoint to `uploader`, rank 0's
    checkpoint_store.CheckpointUploader, when given), the graceful-stop handler (returned too),
    progress. Creating the Trainer initialises the process group (gloo on CPU, NCCL on GPUs)."""
    from transformers import Trainer, set_seed

    from kubetune_trainer.data.collate import PackedCollator
    from kubetune_trainer.evaluation.token_accuracy import argmax, mean_token_accuracy
    from kubetune_trainer.report.metrics_log import MetricsLog
    from kubetune_trainer.stages.prepare import load_tokenizer
    from kubetune_trainer.training.callbacks import (
        CompleteCheckpoints,
        GracefulStop,
        PauseAtStep,
        Progress,
        StepReached,
    )
    from kubetune_trainer.training.modeling import (
        describe,
        flops_per_token,
        load_model,
        lora_config,
    )

    job = Path(config.paths.job)
    # `training.seed` before the model: a LoRA adapter's initialisation (here for SFT, in TRL's
    # trainers for DPO and GRPO) precedes the Trainer's own seeding.
    set_seed(config.training.seed)
    tokenizer = load_tokenizer(prepared.model, config)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device_map = (
        {"": local_rank} if config.topology.gpus and config.method.type == "qlora" else None
    )
    objective = config.training.objective
    model = load_model(
        str(prepared.model),
        config.model,
        config.method,
        config.training,
        gpus=config.topology.gpus,
        device_map=device_map,
        # TRL wraps it, so the reference is the base with the adapter off
        wrap_lora=objective == "sft",
    )
    stop = GracefulStop()
    keep = config.training.saveTotalLimit
    checkpointing = CompleteCheckpoints(job / "checkpoints", keep, uploader)
    callbacks = [checkpointing, stop, StepReached(job), *PauseAtStep.from_env(job)]
    counter: Any
    if objective == "dpo":
        from kubetune_trainer.training.dpo import dpo_trainer

        peft = lora_config(config.method)
        trainer, counter = dpo_trainer(config, model, peft, prepared, tokenizer)
        model = trainer.model
    elif objective == "grpo":
        from kubetune_trainer.training.grpo import grpo_trainer

        peft = lora_config(config.method)
        trainer, counter = grpo_trainer(config, model, peft, prepared, tokenizer)
        model = trainer.model
    else:
        counter = PackedCollator(tokenizer.pad_token_id)
        has_eval = prepared.evaluation is not None
        trainer = Trainer(
            model=model,
            args=training_arguments(config, model, has_eval),
            train_dataset=prepared.train,
            eval_dataset=prepared.evaluation,
            data_collator=counter,
            processing_class=tokenizer,
            compute_metrics=mean_token_accuracy if has_eval else None,
            preprocess_logits_for_metrics=argmax if has_eval else None,
        )
    describe(model, config)
    history = MetricsLog(job)
    progress = Progress(sinks, counter, flops_per_token(model), job / "checkpoints", history)
    for callback in [*callbacks, progress]:
        trainer.add_callback(callback)
    return trainer, stop


def train(trainer: Any, resume: Path | None) -> Any:
    if resume is not None:
        log(f"resuming from {resume.name}")
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    kind = type(optimizer)
    bits = getattr(optimizer, "args", None) and getattr(optimizer.args, "optim_bits", None)
    log(
        f"trained as {type(trainer.model_wrapped).__name__} with {kind.__module__}.{kind.__name__}"
        + (f" ({bits}-bit state)" if bits else "")
    )
    return result


def final_evaluation(trainer: Any, result: Any) -> None:
    """Eval loss and mean token accuracy at the last step, unless `evalSteps` just measured
    them; added to the run's metrics (the manifest) and reported at once."""
    from kubetune_trainer.training.callbacks import Progress

    if trainer.eval_dataset is None:
        return
    step = trainer.state.global_step
    history = trainer.state.log_history
    if not any("eval_loss" in e and e.get("step") == step for e in history):
        trainer.evaluate()
    last = next(e for e in reversed(trainer.state.log_history) if "eval_loss" in e)
    result.metrics.update({k: v for k, v in last.items() if k.startswith("eval_")})
    progress = next(c for c in trainer.callback_handler.callbacks if isinstance(c, Progress))
    if trainer.is_world_process_zero() and progress.evaluation:
        progress.sink.report(progress.extra(), force=True)  # with the metric history


def release(trainer: Any) -> tuple[Any, dict[str, Any]]:
    """Drop the Trainer's model and optimizer (the tool-call scoring loads the exported model);
    returns the tokenizer and the evaluation reported so far."""
    from kubetune_trainer.training.callbacks import Progress

    tokenizer = trainer.processing_class
    progress = next(c for c in trainer.callback_handler.callbacks if isinstance(c, Progress))
    trainer.accelerator.free_memory()
    trainer.model = trainer.model_wrapped = trainer.optimizer = trainer.lr_scheduler = None
    return tokenizer, dict(progress.evaluation)


def run(config: TrainerConfig) -> int:
    """load the prepared data → build the trainer → preflight → train (resuming) → final
    evaluation → export → tool-call scoring."""
    from kubetune_trainer.export.evaluate import evaluate_tool_calls
    from kubetune_trainer.export.outputs import EXIT_GGUF, export
    from kubetune_trainer.runtime.preflight import EXIT_PREFLIGHT, preflight
    from kubetune_trainer.stages.job_report import keep_config, write_job_report

    keep_config(config)  # rank 0: the job's folder describes itself, whatever the outcome
    try:
        prepared = load_prepared(config)
    except NotPrepared as missing:
        log(str(missing))
        return 2
    if gguf_files(config) and int(os.environ.get("RANK", "0")) == 0:
        from kubetune_trainer.export.gguf import GgufError, check_convertible

        try:  # seconds now rather than a failed export after training
            check_convertible(prepared.model)
        except GgufError as e:
            fail(str(e))  # the termination message: the FineTuneJob's status shows it
            return EXIT_GGUF
    try:
        resume = checkpoint_to_resume(config)
    except ObjectStoreError as err:
        fail(f"restoring checkpoints failed: {err}")
        return EXIT_UPLOAD
    sinks = progress_sinks(config)
    uploader = checkpoint_uploader(config)
    trainer, stop = build_trainer(config, prepared, sinks, uploader)
    network = preflight(config, sinks)
    if network and network["verdict"] == "belowFabric" and config.topology.preflight == "fail":
        log(f"preflight failed (spec.distributed.preflight: fail): {network['message']}")
        return EXIT_PREFLIGHT
    result = train(trainer, resume)
    if uploader is not None:
        try:
            uploader.finish()
        except ObjectStoreError as err:
            fail(f"checkpoint upload failed (the checkpoints are complete on the volume): {err}")
            return EXIT_UPLOAD
    if stop.stopped:
        log("stopped on SIGTERM after a complete checkpoint; the next start resumes from it")
        return EXIT_SIGTERM
    final_evaluation(trainer, result)
    code = export(trainer, config, prepared.manifest, result)
    tokenizer, so_far = release(trainer)
    del trainer
    # every rank, whatever the export's code (a failed GGUF conversion): the scoring gathers
    evaluate_tool_calls(config, prepared.manifest, tokenizer, sinks, so_far)
    write_job_report(config, tokenizer)  # rank 0
    if code == 0 and config.output.uri and int(os.environ.get("RANK", "0")) == 0:
        return upload_outputs(config, sinks)
    return code


def checkpoint_uploader(config: TrainerConfig) -> Any:
    """Rank 0's background checkpoint uploads, with `output.uploadCheckpoints`; else None."""
    from kubetune_trainer.storage.checkpoint_store import CheckpointUploader, checkpoint_location

    where = checkpoint_location(config)
    if where is None or int(os.environ.get("RANK", "0")) != 0:
        return None
    return CheckpointUploader(where, config.training.saveTotalLimit)


def upload_outputs(config: TrainerConfig, sinks: Any) -> int:
    """Rank 0 uploads the exported folder to `output.uri`, the run manifest last, reporting its
    progress (`status.progress.upload`; the last report, done, goes out at once)."""
    from kubetune_api.s3_spec import s3_locations
    from kubetune_trainer.storage.object_upload import upload

    where = next(w for w in s3_locations(config) if w.field == "output.uri")
    try:
        upload(
            Path(config.paths.output),
            where,
            report=lambda state: sinks.report(
                {"upload": state.model_dump(mode="json")}, force=state.done
            ),
        )
    except ObjectStoreError as err:
        fail(f"upload failed (the outputs are complete on the volume): {err}")
        return EXIT_UPLOAD
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubetune_trainer.train", description=__doc__)
    parser.add_argument("--config", required=True, help="trainer.yaml (the ConfigMap's key)")
    args = parser.parse_args(argv)
    versions.require()
    config = TrainerConfig.load(args.config)
    configure_tracking(config)
    try:
        code = run(config)
    except Exception as err:
        if (reward := reward_failure(err)) is not None:
            fail(f"train: {reward}")  # the termination message: the FineTuneJob's status
            return EXIT_REWARD
        if not volume_full(err, Path(config.paths.job)):
            raise
        fail(volume_full_message(config, err))
        return EXIT_VOLUME_FULL
    from kubetune_trainer.runtime.distributed import shutdown

    shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
