"""Fault injection: orders through the engine while broker fakes and the hub are hurt (issue 17)."""
