"""The PostgreSQL + pgvector backend: one row per document, writes as transactions."""
