"""kubetune: a Kubernetes operator for LLM fine-tuning (the operator side, torch-free)."""

__version__ = "0.1.0"
