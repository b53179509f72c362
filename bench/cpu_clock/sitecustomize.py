"""CPU seconds of `Trainer.train`, for bench/grpo_throughput.py: with this folder on PYTHONPATH
and KUBETUNE_BENCH_CPU_FILE set, the process wraps transformers' `Trainer.train` (which TRL's
trainers inherit) when `transformers.trainer` is first imported, and appends the process's CPU
time (all threads, user + system) spent inside it to that file. A machine busy with other work
stretches the wall clock several times; the CPU time of a deterministic workload much less.
Every other process (the env is inherited) only pays one environment lookup."""

from __future__ import annotations

import os

if os.environ.get("KUBETUNE_BENCH_CPU_FILE"):
    import importlib.abc
    import importlib.machinery
    import sys
    import time
    from typing import Any

    def _wrap(module: Any) -> None:
        train = module.Trainer.train

        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return train(self, *args, **kwargs)
            finally:
                with open(os.environ["KUBETUNE_BENCH_CPU_FILE"], "a") as out:
                    out.write(f"{time.process_time() - start}\n")

        module.Trainer.train = timed

    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name != "transformers.trainer":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return spec
            loader = spec.loader
            exec_module = loader.exec_module

            def run(module: Any) -> None:
                exec_module(module)
                _wrap(module)

            loader.exec_module = run  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, _Finder())
