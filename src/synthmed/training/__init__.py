"""Training loops for Stage I (geometry) and Stage II (texture), sharing one run driver."""
