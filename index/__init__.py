"""Builds and stores the index: corpus -> chunks -> embeddings + BM25 + manifest."""
