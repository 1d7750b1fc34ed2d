"""Microsoft's own test suite for ``azure-ai-personalizer`` 1.0.0b1, run live against ``xsell serve``.

The suite comes from the package's sdist, fetched at test time (``sdist.py``); a small
stand-in for Azure's recording tooling (``devtools_testutils/``) runs it unchanged.
"""
