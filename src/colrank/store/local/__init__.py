"""The embedded local backend: FAISS, a memory-mapped token file, SQLite and BM25 in snapshots."""
