"""The error every source and transfer failure derives from: a stage catches it and says which
source failed and why, with no traceback."""

from __future__ import annotations


class SourceError(ValueError):
    """A source that is missing or cannot be fetched; the message says which and why."""
