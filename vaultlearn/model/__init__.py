"""The embedding model: sentence-transformers with a sparse memory layer, and continual learning."""
