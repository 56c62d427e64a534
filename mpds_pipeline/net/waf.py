"""The one test for an AWS WAF challenge: IMDb's answer to a client it takes for a bot.

Every response from IMDb (pages, robots.txt, images, dataset files) goes through
``is_waf_challenge``. A challenge is never worked around: the id is ``blocked`` (never
``missing``: a challenge says nothing about whether it exists), and the caller stops.
"""

from __future__ import annotations

from collections.abc import Mapping

WAF_ACTION_HEADER = "x-amzn-waf-action"
# Markers of the WAF's JavaScript challenge page (it carries no page data).
CHALLENGE_MARKERS = (b"awsWafCookieDomainList", b"gokuProps", b"challenge.js", b"AwsWafIntegration")
# Markers of real page data; a challenge page has none of them.
PAGE_DATA_MARKERS = (b"__NEXT_DATA__", b"application/ld+json", b"<h1")


def is_waf_challenge(status_code: int | None, headers: Mapping[str, str], body: bytes = b"") -> bool:
    """True for a response of the WAF rather than of IMDb:

    - HTTP 202 (the challenge's status);
    - any response carrying ``x-amzn-waf-action`` (the WAF names its action);
    - an HTTP 200 page with the challenge script's markers and no page data.

    ``headers`` have lower-case keys (or are case-insensitive). Pass no ``body`` when it
    cannot be a page: a body already verified as an image, or a download not read yet.
    """
    if status_code == 202 or WAF_ACTION_HEADER in headers:
        return True
    if status_code == 200 and body and any(marker in body for marker in CHALLENGE_MARKERS):
        return not any(marker in body for marker in PAGE_DATA_MARKERS)
    return False


def describe_challenge(status_code: int | None, headers: Mapping[str, str]) -> str:
    """What a log line or an outcome says about a challenge."""
    return f"AWS WAF challenge (HTTP {status_code}, {WAF_ACTION_HEADER}={headers.get(WAF_ACTION_HEADER, '-')})"
