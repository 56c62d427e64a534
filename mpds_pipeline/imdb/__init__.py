"""Talking to IMDb: ids and URLs, the polite HTTP client, page parsers, the archive.

Nothing in this package imports dagster.
"""
