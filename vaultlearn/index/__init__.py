"""Vector index and ranking of link suggestions."""
