"""Tests for rag/fid."""
