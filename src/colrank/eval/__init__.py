"""Evaluation apart from the query path: BEIR loading, metrics, runs and the speed bench."""
