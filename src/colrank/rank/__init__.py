"""Step 3, rank: score fusion, the optional cross-encoder, and the final hits."""
