"""Test helpers shared across tiers: no test module imports another (STYLE.md)."""
