"""Tests of rag/; shared helpers (e.g. kv_tiny) are imported as tests.rag.kv_tiny."""
