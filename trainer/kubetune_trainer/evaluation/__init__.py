"""Evaluation on the held-out data: mean token accuracy beside the eval loss during training
(`token_accuracy`), and generation across ranks for the tool-call scores after the export
(`generation`; the scorer is data/tool_calls.py, the step export/evaluate.py)."""
