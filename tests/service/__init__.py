"""Tests for service."""
