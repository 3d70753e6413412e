"""Data: readers for real datasets, the embedded phantom, and the prepared uint8 cache."""
