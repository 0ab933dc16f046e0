"""Everything precomputed offline over a corpus, and its on-disk format.

This layer knows files and arrays, not models: the passage store (SQLite), BM25 term statistics
(``.npz`` + JSON), dense vectors (``.npy`` + FAISS), cached generator states (safetensors) and the
``manifest.json`` that says how each was made. Nothing here is ever pickled, and every write is
atomic (build in a temporary sibling, then rename).
"""
