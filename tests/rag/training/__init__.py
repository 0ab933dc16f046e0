"""Tests for rag/training."""
