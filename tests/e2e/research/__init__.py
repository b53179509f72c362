"""Seed workload 3's research code, as the team's own image would carry it (copied onto the
workspace claim by the test and put on PYTHONPATH)."""
