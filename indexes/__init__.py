"""Everything precomputed offline over a corpus, and its on-disk format.

This layer knows files and arrays, not models, and never imports ``rag``, ``eval`` or
``service`` (checked by ``tests/test_layers.py``). Nothing here is ever pickled, and every write
is atomic (build in a temporary sibling, then rename).

Modules:
    manifest: ``manifest.json``, what the directory holds and exactly how each part was made.
    passage_store: the passages (SQLite), addressed by row.
    bm25_store: BM25 term statistics (``.npz`` + JSON).
    dense_store: dense vectors (``.npy``) and their FAISS structure.
    vector_store: the ``VectorStore`` protocol (the seam FAISS implements) and its factories.
    filters: metadata filters: a backend-neutral expression (Condition/And/Or) and its row mask.
    metadata_types: the types each metadata field holds, recorded in the manifest, checked on upserts.
    milvus_store: an index's vectors and BM25 weights in Milvus collections (``--backend milvus``).
    milvus_search: one commit of a Milvus index searched by passage row (dense and BM25, exact top-k).
    milvus_filter: the filters' expression as a Milvus boolean expression over typed row metadata.
    commits: numbered commits over immutable segments, published by an atomic rename; reader leases.
    segmented: one commit's segments seen as one index (live rows in fresh-build order); checksums.
    kv_store: cached generator key/value states per passage (safetensors shards); carried across commits.
    lumen_store: LUMEN passage memory (safetensors).
    atomic: atomic files and directories, and the build lock.
    errors: the user-facing error types every layer raises, each with its declared code.
    io_errors: one-line messages for what the file system and SQLite refuse.
    layout: which entries of an index directory belong to the index (a rebuild replaces only those).
"""
