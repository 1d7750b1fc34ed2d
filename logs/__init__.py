"""The durable decision and reward log, and the model index, in SQLite.

All SQL lives here. Nothing in this package imports Flask, pydantic or Vowpal
Wabbit; it may use the plain domain types of ``policies.base``.
"""
