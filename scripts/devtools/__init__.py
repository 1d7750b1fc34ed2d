"""Developer tools: benchmarks, fault runs, simulators and the synthetic problems they use.

`xsell bench`, `xsell faults` and `xsell simulate` call into these, and the tests use
the simulators; the service and a user's commands (serve, learn, evaluate, models,
catalog, relations, logs, config) never import them. They use only runtime
dependencies and the standard library (scripts/http.py for HTTP), so `xsell bench`
works in an installation without the dev extras; anything dev-only
(`reward_model_check --obp` needs obp) is imported where it is used and says so.
"""
