"""Tests for indexes."""
