"""Failures that end a training run with their own exit code and message: a failed grader, a
full workspace volume."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from kubetune_api.config import TrainerConfig
from kubetune_trainer.runtime.checkpoints import latest_complete

EXIT_VOLUME_FULL = 28  # ENOSPC; 1-127: a retry cannot help, the job fails at once
EXIT_REWARD = 7  # a grader of spec.rewards failed: the same data fails it again, no retry


def reward_failure(err: BaseException) -> str | None:
    """The message of a failed grader (`rewards.RewardError`, which names it) anywhere in the
    exception's chain; None for any other error."""
    from kubetune_trainer.training.rewards import RewardError

    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, RewardError):
            return str(seen)[:1000]
        seen = seen.__cause__ or seen.__context__
    return None


FULL_MARKERS = ("No space left on device", "StorageFull", "Disk quota exceeded")


def volume_full(err: BaseException, job: Path) -> bool:
    """The workspace volume ran out of space: ENOSPC anywhere in the exception's chain, or
    the words the writers use for it (torch.save: "file write failed"; safetensors:
    "StorageFull") while the volume has (almost) nothing left."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(marker in str(seen) for marker in FULL_MARKERS):
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        nearly_full = shutil.disk_usage(job).free < 16 * 2**20
    except OSError:
        return False
    return nearly_full and "write failed" in str(err)


def volume_full_message(config: TrainerConfig, err: BaseException) -> str:
    root = Path(config.paths.job) / "checkpoints"
    last = latest_complete(root)
    kept = (
        f"the latest complete checkpoint, {last.name}, is kept and a restart resumes from it"
        if last is not None
        else "no checkpoint was complete yet"
    )
    return (
        f"train: the workspace volume is full ({type(err).__name__}: {str(err)[:200]}); "
        f"{kept}. Give the job a larger volume (spec.storage.size) or keep fewer checkpoints "
        "(spec.training.saveTotalLimit)"
    )
