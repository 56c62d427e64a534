"""Everything Dagster loads: assets, checks, jobs, schedules, sensors, resources.

The only layer that imports dagster."""
