"""The `xsell` commands, one module per command group; `scripts/cli.py` registers them.

A command is a short function over library calls: it parses flags, calls into
`service`, `logs`, `policies` or a `scripts` module, and prints. Imports of the work
itself stay inside the command function, so `xsell --help` loads nothing heavy and a
user's command never loads a developer tool (`scripts/devtools/`).
"""
