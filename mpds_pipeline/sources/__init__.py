"""Where records and images come from besides a live IMDb crawl, one module per source.

Sources never import dagster: they take a ``PoliteClient`` (or ``ClientSettings``) and
plain settings, and the assets call them.
"""
