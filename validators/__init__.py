"""Parity validators: pure functions over records that find and explain divergence.

Installed as `migrate.validators` (never as a top-level `validators`, which is a PyPI package).
"""
