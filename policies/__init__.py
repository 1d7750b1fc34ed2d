"""Deciding and learning: Policy protocol, Vowpal Wabbit policy, baselines, learner.

Nothing here imports Flask, pydantic or SQL; ``policies.vw`` is the only module
that imports Vowpal Wabbit.
"""
