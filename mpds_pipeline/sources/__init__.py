"""Where records and images come from besides live IMDb pages: one module per source,
each taking a PoliteClient (or its settings) and plain settings. No dagster here."""
