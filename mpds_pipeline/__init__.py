"""MPDS pipeline: IMDb crawl -> curated poster/prompt dataset -> poster generation.

``dagster ... -m mpds_pipeline`` finds the code location's Definitions here (built in
``definitions.py`` from ``defs/``); the core packages never import dagster, so importing
them stays light.
"""

# `defs` is the defs/ package (dg's layout), so the Definitions go by another name here.
_DEFINITIONS = "mpds_definitions"


def __getattr__(name):
    # Loaded lazily so `import mpds_pipeline.imdb` does not pull in dagster.
    if name == _DEFINITIONS:
        from .definitions import defs

        return defs
    raise AttributeError(name)


def __dir__():
    # Dagster's `-m mpds_pipeline` loader lists module attributes with dir().
    return sorted([*globals(), _DEFINITIONS])
