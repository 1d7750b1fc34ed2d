"""Learning: from logged decisions and their rewards to published model versions.

The learner (first learnings and corrections), the model registry (versions,
rollback, archives), the shadow policy, the guardrail and the reward rules. No
Flask, no SQL: stores come in through small protocols.
"""
