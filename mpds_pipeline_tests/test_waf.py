"""The one WAF detector: its rule, and that every caller goes through it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import mpds_pipeline
from mpds_pipeline.imdb.classify import classify_response
from mpds_pipeline.net.client import PoliteClient
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline.net.waf import CHALLENGE_MARKERS, WAF_ACTION_HEADER, is_waf_challenge
from mpds_pipeline.sample_server import FaultPlan, FaultRule, SampleImdbServer

CHALLENGE_PAGE = b"<html><script src='https://x.token.awswaf.com/challenge.js'></script>gokuProps</html>"


@pytest.mark.parametrize(
    "status, headers, body, expected",
    [
        (202, {}, b"", True),  # the challenge's own status, with or without a body
        (202, {}, b"<html>anything</html>", True),
        (403, {WAF_ACTION_HEADER: "block"}, b"", True),
        (405, {WAF_ACTION_HEADER: "captcha"}, b"", True),
        (200, {WAF_ACTION_HEADER: "challenge"}, b"", True),
        (404, {WAF_ACTION_HEADER: "block"}, b"", True),  # the WAF spoke: blocked, never "missing"
        (200, {}, CHALLENGE_PAGE, True),  # the challenge page served as a 200, no header
        (200, {}, CHALLENGE_PAGE + b'<script id="__NEXT_DATA__">{}</script>', False),  # a real page naming the script
        (200, {}, b"<html><h1>Title</h1></html>", False),
        (403, {}, CHALLENGE_PAGE, False),  # a plain 403 is a failure, not a challenge
        (404, {}, b"<title>404 Error</title>", False),
        (200, {"content-type": "image/jpeg"}, b"", False),  # an image whose body is not looked at
        (None, {}, b"", False),  # no response at all
    ],
)
def test_the_rule(status, headers, body, expected):
    assert is_waf_challenge(status, headers, body) is expected


def test_httpx_headers_are_matched_whatever_their_case():
    import httpx

    assert is_waf_challenge(403, httpx.Headers({"X-Amzn-Waf-Action": "block"}))


def test_a_challenged_robots_txt_blocks_the_page_it_guards():
    """robots.txt answered by the WAF (a 200 challenge page without the header) is the
    challenge handed to the crawl as the page's answer, never read as robots rules."""
    with SampleImdbServer(faults=FaultPlan([FaultRule("waf200", path="^/robots.txt$")])) as server:
        settings = ClientSettings(base_url=server.base_url, rate_per_second=0, max_retries=0)

        async def fetch():
            async with PoliteClient(settings) as client:
                return await client.fetch(server.base_url + "/title/tt0000001")

        resp = asyncio.run(fetch())
        assert server.request_count("/title/") == 0
    status, _, error = classify_response("title", 1, resp)
    assert status == "blocked" and "WAF" in error


def test_no_other_module_tests_for_the_waf():
    """The header name and the challenge markers appear in waf.py only (the sample
    server, which plays the WAF, aside)."""
    root = Path(mpds_pipeline.__file__).parent
    needles = [WAF_ACTION_HEADER, *(m.decode() for m in CHALLENGE_MARKERS)]
    offenders = [
        f"{path.relative_to(root)}: {needle}"
        for path in root.rglob("*.py")
        if path.name != "waf.py" and "sample_server" not in path.parts
        for needle in needles
        if needle in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
