"""Every attempted id ends in exactly one status: ok, missing, redirect, blocked or failed.

Classification looks only at the HTTP response and cheap byte markers, never at the
parsers: a page that later fails to parse is still "ok" here (the parser reports it).
Blocking is never "missing": an AWS WAF challenge says nothing about whether the id exists.
"""

from __future__ import annotations

from ..net.client import REDIRECT_STATUSES, FetchResponse
from ..net.waf import describe_challenge, is_waf_challenge
from .ids import parse_person_id, parse_title_id
from .records import FetchStatus

# IMDb's own "404 Error" page, sometimes served with HTTP 200. Plain substring tests:
# a regex over every page's head cost more than the rest of the classification.
_NOT_FOUND_MARKERS = (b"<title>404 Error", b'"page":"/_error"', b'"statusCode":404')
_HEAD_BYTES = 200_000  # where the title/markers sit; avoids scanning whole pages


def is_not_found_page(content: bytes) -> bool:
    head = content[:_HEAD_BYTES]
    return any(marker in head for marker in _NOT_FOUND_MARKERS)


def redirect_target_id(kind: str, location: str) -> int | None:
    return parse_title_id(location) if kind == "title" else parse_person_id(location)


def classify_response(kind: str, item_id: int, resp: FetchResponse) -> tuple[FetchStatus, int | None, str | None]:
    """(status, redirect_target_id, error) for the response to one id's page."""
    status = resp.status_code
    if is_waf_challenge(status, resp.headers, resp.content):
        return "blocked", None, describe_challenge(status, resp.headers)
    if resp.error is not None:
        return "failed", None, resp.error
    if status in (404, 410):
        return "missing", None, None
    if status in REDIRECT_STATUSES:
        location = resp.headers.get("location", "")
        target = redirect_target_id(kind, location)
        if target is None:
            return "failed", None, f"HTTP {status} redirect to a page that is not a {kind}: {location!r}"
        if target == item_id:
            return "failed", None, f"HTTP {status} redirect to the same id was not followed: {location!r}"
        return "redirect", target, None
    if status == 200:
        if not resp.content:
            return "failed", None, "HTTP 200 with an empty body"
        if is_not_found_page(resp.content):
            return "missing", None, None
        return "ok", None, None
    return "failed", None, f"unexpected HTTP {status}"
