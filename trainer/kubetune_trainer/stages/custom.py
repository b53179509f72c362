"""Run the user's own training code with the job's volumes, env and topology.

`torchrun -m kubetune_trainer.custom --config trainer.yaml` starts one of these per process;
it resolves the paths, exports them, and hands over to the user's module (in-process, as
`python -m` would) or command (exec). Environment the user's code can read:

    KUBETUNE_MODEL_PATH        the base model (or the previous stage's output/checkpoint)
    KUBETUNE_DATASET_PATH      the prepared (tokenized, packed) dataset, if the job has one
    KUBETUNE_DATA_PATHS        the raw dataset sources, os.pathsep-separated
    KUBETUNE_OUTPUT_DIR        where to write outputs
    KUBETUNE_CHECKPOINT_DIR    where to write checkpoint-<step> folders (mark them complete
                               with kubetune_trainer.runtime.checkpoints.mark_complete to make
                               them resumable)
    KUBETUNE_RESUME_FROM       the latest complete checkpoint of this job, if any
    KUBETUNE_DEEPSPEED_CONFIG  a DeepSpeed config for the job's strategy (deepspeed-* only)
    KUBETUNE_CONFIG            the full trainer config
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from pathlib import Path

from kubetune_api.config import TrainerConfig
from kubetune_trainer.data.prepared import PreparedManifest
from kubetune_trainer.runtime.checkpoints import latest_complete
from kubetune_trainer.training.strategy import deepspeed_config


def environment(config: TrainerConfig, config_path: str) -> dict[str, str]:
    job = Path(config.paths.job)
    prepared: PreparedManifest = json.loads((job / "prepared.json").read_text())
    checkpoints = job / "checkpoints"
    env = {
        "KUBETUNE_CONFIG": config_path,
        "KUBETUNE_MODEL_PATH": prepared["model"],
        "KUBETUNE_OUTPUT_DIR": config.paths.output,
        "KUBETUNE_CHECKPOINT_DIR": str(checkpoints),
        "KUBETUNE_DATA_PATHS": os.pathsep.join(p for p in config.paths.datasets if p),
    }
    if prepared.get("dataset"):
        env["KUBETUNE_DATASET_PATH"] = prepared["dataset"]
    if (resume := latest_complete(checkpoints)) is not None:
        env["KUBETUNE_RESUME_FROM"] = str(resume)
    ds = deepspeed_config(config.topology.strategy)
    if ds is not None:
        path = job / "deepspeed.json"
        path.write_text(json.dumps(ds, indent=2))
        env["KUBETUNE_DEEPSPEED_CONFIG"] = str(path)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kubetune_trainer.custom",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    config = TrainerConfig.load(args.config)
    entry = config.entrypoint
    if entry is None:
        print("kubetune_trainer.custom: the job has no entrypoint", file=sys.stderr)
        return 2
    Path(config.paths.output).mkdir(parents=True, exist_ok=True)
    os.environ.update(environment(config, args.config))
    if entry.module:
        sys.argv = [entry.module, *entry.args]
        runpy.run_module(entry.module, run_name="__main__", alter_sys=True)
        return 0
    command = [*(entry.command or []), *entry.args]
    os.execvp(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
