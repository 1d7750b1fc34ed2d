"""The `xsell` command line: thin commands over service, policies and logs."""
