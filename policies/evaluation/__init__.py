"""Evaluation: what any policy would have earned, estimated from the log alone.

Replay of candidate policies, the estimators (IPS, SNIPS, DM, DR, SNDR) with their
intervals, the reward model behind DM and DR, feature importance and the log's own
summary. No Flask, no SQL.
"""
