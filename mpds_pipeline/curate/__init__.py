"""Curation: filters, image download and validation, prompts, rectifications, exports.

Nothing in this package imports dagster.
"""
