"""Tests for eval."""
