"""``chinwag bench``: measure the pipeline against the raw limits of its own components.

It starts the system as ``chinwag up`` does (or uses the configured URLs),
drives it with real HTTP clients, checks every delivered item, and reports the
figures as a table and as JSON. It measures; it changes nothing in the services.
"""
