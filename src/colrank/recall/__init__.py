"""Step 1, recall: dense, BM25 or hybrid candidates with their first-stage scores."""
