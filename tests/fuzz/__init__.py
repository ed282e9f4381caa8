"""Fuzzing with hypothesis (issue 17): parsers and mappings at the edges get a typed error or a
valid result, never an unhandled exception, and never an order from input that failed validation."""
