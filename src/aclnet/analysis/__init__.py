"""Analyses of data and trained models: animations, families, per-class reports, robustness, plots."""
