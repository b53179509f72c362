"""kubetune: a Kubernetes operator for LLM fine-tuning (the operator side, torch-free)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kubetune")  # pyproject.toml is the one home of the version
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"
