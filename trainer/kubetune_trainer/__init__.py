"""kubetune's trainer: config → data → model → train → export, run under torchrun."""

__version__ = "0.1.0"
