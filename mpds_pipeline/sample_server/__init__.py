"""A loopback sample IMDb server for tests, the demo and benchmarks (project code)."""

from .content import PERSON_ID_RANGE, sample_person, sample_title
from .faults import FaultPlan, FaultRule
from .server import SampleImdbServer, main, run_sample_server

__all__ = [
    "FaultPlan",
    "FaultRule",
    "PERSON_ID_RANGE",
    "SampleImdbServer",
    "main",
    "run_sample_server",
    "sample_person",
    "sample_title",
]
