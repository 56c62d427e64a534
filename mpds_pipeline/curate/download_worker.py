"""The handler a download worker process runs (base/workers.py starts the processes).

Each worker downloads one share of the list with its share of the rate and streams each
manifest row to the parent as soon as it is known; a stop (a WAF challenge in another
worker, or the parent gone) ends it after its requests in flight.
"""

from __future__ import annotations

from .image_fetch import fetch_and_store


def download_share(setup, context):
    """``setup``: (dest_dir, client settings share, limits, verify, opt-out policy); each
    task: (items, known bad bytes of those items) -> (blocked, requested)."""
    dest_dir, settings, limits, verify, optout = setup

    def download(task):
        todo, known_bad = task
        return fetch_and_store(
            todo,
            dest_dir,
            settings,
            limits,
            verify,
            context.emit,
            known_bad=known_bad,
            optout=optout,
            stop=context.stop,
        )

    return download
