"""Evaluation on the held-out data: mean token accuracy beside the eval loss during training
(`token_accuracy`), and generation-based tool-call scoring after the export (`tool_calls` parses
and scores, `generation` generates and gathers across ranks, `run` composes them)."""
