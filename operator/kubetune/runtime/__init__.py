"""The operator runtime: kopf handlers over a thin API layer; all decisions in pure functions."""
