"""Fine-tuning a ColBERT on labelled queries (apart from the query path)."""
