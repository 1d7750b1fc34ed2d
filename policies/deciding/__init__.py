"""Deciding: turn a context and candidate offers into a distribution, and sample from it.

The Vowpal Wabbit policy (the only VW import, with the allowlist of options it may
get and the model-header reader), the no-model baselines, the sampler, the VW text
features and the live settings serving obeys. No Flask, no SQL.
"""
