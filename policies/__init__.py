"""The decision logic, with no Flask and no SQL: ``base`` holds the shared types.

``deciding`` ranks and samples (the VW policy, baselines, sampling, features);
``learning`` turns the log into model versions (learner, registry, shadow,
guardrail, rewards); ``evaluation`` estimates any policy's value from the log;
``offers`` builds cross-sell candidates (relations, shortlist rules, pacing).
Nothing here imports ``service``, ``logs`` or ``scripts``.
"""
