"""Step 2, rerank: ColBERT MaxSim over stored token codes, and a ranker for outside documents."""
