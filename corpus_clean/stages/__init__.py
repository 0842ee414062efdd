"""The per-record stages: split, clean, learned boilerplate."""
