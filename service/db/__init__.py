"""Persistence: the DER is the truth; indexed columns exist to query it."""
