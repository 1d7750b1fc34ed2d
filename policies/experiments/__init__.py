"""Experiments against a holdout: sticky assignment, anytime-valid intervals, sample-ratio checks.

Pure arithmetic, no I/O: the log (logs/experiment_store.py) counts, these judge.
"""
