"""The stages a pod runs, each a `main(argv)`: `prepare` (the init container: fetch, template,
tokenize, pack), `train` (torchrun: SFT, DPO or GRPO, then export and evaluation), `custom` (a
user's entrypoint with the same inputs), `preview` (`kubetune preview`). `job_report` and
`failures` finish a stage: the report, and the exit code and message of what went wrong.

A stage defers its heavy imports into `main`: the version check (runtime/versions.py) runs
before torch loads, so a wrong stack fails with a message naming the package, not a traceback.
The layers below are in pyproject.toml's import-linter contract."""
