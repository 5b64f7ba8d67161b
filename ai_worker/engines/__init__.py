"""Hypothesis engines. Each turns Evidence into ranked hypotheses."""
