"""The caption review page (``mpds review``): a queue of posters, their BLIP-2 captions
and prompts, and corrections saved to the rectification store."""

from .items import REVIEW_COLUMNS, load_review_items
from .server import main, make_review_server, run_review_server
from .state import QueueFilter, ReviewState

__all__ = [
    "REVIEW_COLUMNS",
    "QueueFilter",
    "ReviewState",
    "load_review_items",
    "main",
    "make_review_server",
    "run_review_server",
]
