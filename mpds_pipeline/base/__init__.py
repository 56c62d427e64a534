"""The base every layer stands on: data-dir paths, atomic files, progress, settings. Imports nothing of the project."""
