"""Evaluation of synthetic data: downstream segmentation utility and its scoring protocol."""
