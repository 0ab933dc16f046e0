"""Measurement: retrieval metrics, QA metrics, judges, PPI estimators and reports."""
