"""The shared HTTP layer: exact WAF stops at any concurrency, robots.txt by RFC 9309,
per-host politeness, per-request headers and secret redaction, against loopback servers."""

from __future__ import annotations

import asyncio
import re

import pytest

from mpds_pipeline.imdb.crawl import CrawlStopped, ImdbBlockingError, crawl_partition
from mpds_pipeline.net.client import HostNotAllowed, PoliteClient, RobotsDisallowed, RobotsUnavailable
from mpds_pipeline.net.client_settings import ClientSettings, HostPolicy
from mpds_pipeline.net.redact import REDACTED, redact_text, redact_url
from mpds_pipeline.sample_server import FaultPlan, FaultRule, SampleImdbServer

from .test_crawl import settings_for


def run_fetches(settings: ClientSettings, urls: list[str], **kwargs):
    async def run():
        async with PoliteClient(settings) as client:
            results = await asyncio.gather(*(client.fetch(u, **kwargs) for u in urls), return_exceptions=True)
            return results, client

    return asyncio.run(run())


@pytest.fixture
def server():
    with SampleImdbServer() as srv:
        yield srv


# --- the WAF stop -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["waf", "waf403", "waf200"])
def test_waf_stop_is_exact_at_rate_10_and_concurrency_8(server, tmp_path, kind):
    server.set_faults(FaultPlan([FaultRule(kind, path="^/title/")]))
    settings = settings_for(server, rate_per_second=10, concurrency=8)
    with pytest.raises(ImdbBlockingError):
        crawl_partition("title", range(1, 61), settings, tmp_path, max_consecutive_blocks=5)
    assert server.request_count("/title/") == 5


def test_after_a_block_no_request_leaves_until_those_in_flight_have_answered(server):
    """A block mid-crawl: the next request goes alone, and only once it has answered
    (not with a challenge) do the others follow, together again."""
    server.set_faults(FaultPlan([FaultRule("waf", ids={3}), FaultRule("slow", path="^/title/", delay_s=0.4)]))
    settings = settings_for(server, concurrency=8, obey_robots=False)
    urls = [f"{server.base_url}/title/tt{i:07d}" for i in range(1, 9)]

    async def run():
        async with PoliteClient(settings) as client:
            assert (await client.fetch(urls[0])).status_code == 200  # the probe: the gate opens
            assert (await client.fetch(urls[2])).status_code == 202  # a challenge: the gate closes
            server.clear_log()
            await asyncio.gather(*(client.fetch(u) for u in urls[3:8]))

    asyncio.run(run())
    arrivals = sorted(r.t for r in server.requests)
    assert len(arrivals) == 5
    # the first went alone and answered (0.4 s) before the other four left, together
    assert arrivals[1] - arrivals[0] >= 0.4
    assert arrivals[4] - arrivals[1] < 0.4


# --- robots.txt (RFC 9309) ----------------------------------------------------------------
def test_robots_txt_5xx_crawls_nothing_and_is_asked_at_most_twice(server, tmp_path):
    server.set_faults(FaultPlan([FaultRule("500", path="^/robots.txt$")]))
    with pytest.raises(CrawlStopped) as stopped:
        crawl_partition("title", range(1, 11), settings_for(server), tmp_path)
    message = str(stopped.value)
    assert "robots.txt" in message and "HTTP 500" in message and "unreachable" not in message.split(";")[0]
    assert server.request_count("/title/") == 0
    assert 1 <= server.request_count("/robots.txt") <= 2
    assert len(stopped.value.result.unattempted_ids) == 10


def test_robots_txt_429_is_unreachable_too_and_its_retry_after_is_honoured(server):
    server.set_faults(FaultPlan([FaultRule("429", path="^/robots.txt$", retry_after="0")]))
    results, _ = run_fetches(settings_for(server), [server.base_url + "/title/tt0000001"])
    assert isinstance(results[0], RobotsUnavailable) and "HTTP 429" in str(results[0])
    assert server.request_count("/robots.txt") == 2


def test_robots_txt_answering_after_one_5xx_is_used(server):
    server.set_faults(FaultPlan([FaultRule("503", path="^/robots.txt$", times=1)]))
    results, _ = run_fetches(settings_for(server), [server.base_url + "/title/tt0000001"])
    assert results[0].status_code == 200
    assert server.request_count("/robots.txt") == 2


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_robots_txt_4xx_means_no_rules(status, tmp_path):
    with SampleImdbServer(robots_txt=None, robots_status=status) as srv:
        results, _ = run_fetches(settings_for(srv), [srv.base_url + "/search/title?genres=drama"])
        assert results[0].status_code is not None
        assert srv.request_count("/robots.txt") == 1 and srv.request_count("/search/") == 1


def test_robots_txt_rules_past_500_kib_are_ignored_and_those_before_obeyed():
    head = b"User-agent: *\nDisallow: /search/\n"
    padding = b"# " + b"x" * 1000 + b"\n"
    body = head + padding * 600 + b"User-agent: *\nDisallow: /title/\n"  # ~600 KB: the last rule is past 500 KiB
    with SampleImdbServer(robots_txt=body) as srv:
        results, _ = run_fetches(
            settings_for(srv), [srv.base_url + "/title/tt0000001", srv.base_url + "/search/title?x=1"]
        )
    assert results[0].status_code == 200
    assert isinstance(results[1], RobotsDisallowed)


# --- per host -----------------------------------------------------------------------------
def test_each_host_has_its_own_rate_and_requests_are_counted_per_host():
    with SampleImdbServer() as slow, SampleImdbServer() as fast:
        settings = settings_for(slow, rate_per_second=2, obey_robots=False).with_host(
            fast.base_url, HostPolicy(rate_per_second=0, concurrency=4, obey_robots=False, detect_waf=False)
        )
        urls = [f"{fast.base_url}/title/tt{i:07d}" for i in range(1, 21)] + [slow.base_url + "/title/tt0000001"]

        async def run():
            async with PoliteClient(settings) as client:
                await asyncio.gather(*(client.fetch(u) for u in urls))
                return client.requests_by_host()

        by_host = asyncio.run(run())
        # the unlimited host's 20 requests did not wait for the 2/s one
        assert fast.max_requests_in_any_window(1.0, "/title/") == 20
    assert by_host == {slow.address: 1, fast.address: 20}


def test_a_429_halves_the_hosts_rate_for_the_rest_of_the_run(server):
    server.set_faults(FaultPlan([FaultRule("429", path="^/title/tt0000001$", retry_after="0", times=1)]))
    lines: list[str] = []

    async def run():
        async with PoliteClient(settings_for(server, rate_per_second=8, obey_robots=False), log=lines.append) as client:
            resp = await client.fetch(server.base_url + "/title/tt0000001")
            return resp, client.rate_per_second

    resp, rate = asyncio.run(run())
    assert resp.status_code == 200 and rate == 4
    assert any("HTTP 429" in line and "halved" in line for line in lines)


def test_a_burst_of_503s_halves_the_rate_once_not_once_each(server):
    """One overload answers several requests in flight: one halving per cooldown, so a
    flaky host is slowed, not ground to a request a minute."""
    server.set_faults(FaultPlan([FaultRule("503", path="^/title/", times=1)]))
    lines: list[str] = []

    async def run():
        settings = settings_for(server, rate_per_second=8, concurrency=4, obey_robots=False)
        async with PoliteClient(settings, log=lines.append) as client:
            await asyncio.gather(*(client.fetch(f"{server.base_url}/title/tt{i:07d}") for i in range(1, 7)))
            return client.rate_per_second

    assert asyncio.run(run()) == 4
    assert sum("halved" in line for line in lines) == 1


def test_request_headers_are_sent_with_that_request_only_and_the_user_agent_names_the_contact():
    seen: list[dict] = []
    with SampleImdbServer(on_request=lambda path, headers: seen.append(dict(headers))) as srv:
        settings = settings_for(srv, obey_robots=False, contact="data-team@example.org")
        run_fetches(settings, [srv.base_url + "/title/tt0000001"], headers={"Range": "bytes=0-99"})
        run_fetches(settings, [srv.base_url + "/title/tt0000002"])
    assert seen[0]["Range"] == "bytes=0-99" and "Range" not in seen[1]
    assert "contact: data-team@example.org" in seen[0]["User-Agent"]
    assert seen[0]["User-Agent"].startswith("MPDS-pipeline/")


# --- secrets ------------------------------------------------------------------------------
def test_redaction_of_urls_and_text():
    url = "https://www.omdbapi.com/?i=tt0133093&apikey=s3cr3tKEY&plot=short"
    assert "s3cr3tKEY" not in redact_url(url) and REDACTED in redact_url(url) and "i=tt0133093" in redact_url(url)
    assert redact_url("https://example.org/a?b=1") == "https://example.org/a?b=1"
    assert "s3cr3tKEY" not in redact_text(f"ConnectionError: cannot reach {url}")


def test_a_key_in_the_url_never_reaches_a_response_or_an_error(server):
    secret = "s3cr3tKEY"
    settings = settings_for(server, obey_robots=False)
    results, _ = run_fetches(settings, [f"{server.base_url}/title/tt0000001?apikey={secret}"])
    assert secret not in results[0].url and secret not in results[0].final_url
    with pytest.raises(HostNotAllowed) as refused:
        run_fetches(settings, [])  # a client with no fetch is fine
        asyncio.run(_fetch_one(settings, f"https://elsewhere.example/?apikey={secret}"))
    assert secret not in str(refused.value)
    dead = settings_for(server, base_url="http://127.0.0.1:9", max_retries=0, obey_robots=False)
    results, _ = run_fetches(dead, [f"http://127.0.0.1:9/?apikey={secret}"])
    assert results[0].error and secret not in results[0].error and secret not in results[0].url
    assert not re.search(secret, repr(results[0]))


async def _fetch_one(settings: ClientSettings, url: str):
    async with PoliteClient(settings) as client:
        return await client.fetch(url)
