"""Where pages and records come from besides live IMDb: one module per source.

Sources never import dagster; they take a PoliteClient (or ClientSettings) and plain
settings, and every request goes through ``net/``.
"""
