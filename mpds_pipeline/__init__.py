"""MPDS pipeline: IMDb crawl -> curated poster/prompt dataset -> poster generation.

``dagster ... -m mpds_pipeline`` finds ``defs`` here; the core packages (imdb, curate,
vision) never import dagster, so importing them stays light.
"""


def __getattr__(name):
    # Loaded lazily so `import mpds_pipeline.imdb` does not pull in dagster.
    if name == "defs":
        from .definitions import defs

        return defs
    raise AttributeError(name)


def __dir__():
    # Dagster's `-m mpds_pipeline` loader lists module attributes with dir().
    return sorted([*globals(), "defs"])
