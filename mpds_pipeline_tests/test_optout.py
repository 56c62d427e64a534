"""AI opt-out signals: the X-Robots-Tag forms, TDMRep (header and tdmrep.json), and the
refusal on a real download from the loopback sample server."""

from __future__ import annotations

import json

import pytest

from mpds_pipeline.curate.images import download_images, read_download_settings
from mpds_pipeline.curate.manifest import read_manifest
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline.net.optout import OptOutPolicy, parse_tdmrep, robots_tag_signals
from mpds_pipeline.sample_server.content import sample_title
from mpds_pipeline.sample_server.server import NOAI_POSTERS, SampleImdbServer


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("noai", ["noai"]),
        ("noimageai", ["noimageai"]),
        ("NoAI", ["noai"]),
        ("noindex, nofollow, noimageai", ["noimageai"]),
        ("noai, noimageai", ["noai", "noimageai"]),
        ("mpds-pipeline: noai", ["noai"]),
        ("MPDS-Pipeline: noimageai, nofollow", ["noimageai"]),
        ("otherbot: noai", []),
        ("otherbot: noai, noimageai", []),  # a comma list after an agent is that agent's
        ("googlebot: noindex, mpds-pipeline: noai", ["noai"]),
        ("mpds-pipeline: noindex, otherbot: noai", []),
        ("unavailable_after: 25 Jun 2010 15:00:00 PST, noai", ["noai"]),  # a valued directive, no agent
        ("noindex", []),
        ("", []),
        (None, []),
    ],
)
def test_x_robots_tag_forms(value, expected):
    assert robots_tag_signals(value) == expected


def test_policy_reads_headers_in_order_and_tdm_header_overrides_the_file():
    file_rules = parse_tdmrep(json.dumps([{"location": "/images/*", "tdm-reservation": 1}]).encode())
    policy = OptOutPolicy(tdmrep={"http://h": file_rules})
    url = "http://h/images/a.jpg"
    assert policy.signal(url, {}) == "tdm-reservation"
    assert policy.signal("http://h/other/a.jpg", {}) is None
    assert policy.signal("http://elsewhere/images/a.jpg", {}) is None
    assert policy.signal(url, {"tdm-reservation": "0"}) is None  # the response says not reserved
    assert policy.signal("http://h/x.jpg", {"tdm-reservation": "1"}) == "tdm-reservation"
    assert policy.signal(url, {"x-robots-tag": "noimageai"}) == "noimageai"
    assert OptOutPolicy(enabled=False, tdmrep={"http://h": file_rules}).signal(url, {"x-robots-tag": "noai"}) is None


def test_tdmrep_patterns_and_bad_files():
    rules = parse_tdmrep(
        json.dumps(
            [
                {"location": "/open/*.jpg$", "tdm-reservation": 0},
                {"location": "/", "tdm-reservation": 1, "tdm-policy": "https://h/policy.json"},
            ]
        ).encode()
    )
    policy = OptOutPolicy(tdmrep={"http://h": rules})
    assert policy.signal("http://h/open/a.jpg", {}) is None  # the first matching rule decides
    assert policy.signal("http://h/open/a.jpg.html", {}) == "tdm-reservation"
    assert rules[1].policy == "https://h/policy.json"
    assert parse_tdmrep(b"<html>not json</html>") == []
    assert parse_tdmrep(b'{"location": "/"}') == []  # not an array
    assert parse_tdmrep(b'[{"tdm-reservation": 1}, "x"]') == []  # no location


def _poster_items(server: SampleImdbServer, ids) -> list[tuple[int, str]]:
    return [(i, f"{server.base_url}/images/M/{sample_title(i)['poster_token']}._V1_.jpg") for i in ids]


def test_sample_server_poster_with_noai_is_refused_and_counted(tmp_path):
    noai_id = next(iter(NOAI_POSTERS))
    assert 1 <= noai_id <= 200 and sample_title(noai_id)["poster_token"]  # inside the demo's title range
    with SampleImdbServer() as server:
        settings = ClientSettings(base_url=server.base_url, rate_per_second=0, timeout_s=5.0)
        result = download_images(_poster_items(server, [100, noai_id, 102]), tmp_path, settings)
        assert server.request_count("/.well-known/tdmrep.json") == 1  # once per origin per run
    manifest = read_manifest(tmp_path).set_index("id")
    assert manifest.loc[noai_id, "status"] == "opted_out"
    assert manifest.loc[noai_id, "reason"] == "opted_out:noai"
    assert manifest.loc[100, "status"] == manifest.loc[102, "status"] == "ok"
    assert not (tmp_path / f"{noai_id}.jpg").exists()
    assert result.reasons == {"opted_out:noai": 1}
    assert result.metadata()["status_opted_out"] == 1 and result.metadata()["ai_optout"] == "honoured"
    assert read_download_settings(tmp_path) == {"ai_optout": True}


def test_research_setting_downloads_the_opted_out_poster_and_says_so(tmp_path):
    noai_id = next(iter(NOAI_POSTERS))
    with SampleImdbServer() as server:
        settings = ClientSettings(base_url=server.base_url, rate_per_second=0, timeout_s=5.0)
        result = download_images(_poster_items(server, [noai_id]), tmp_path, settings, ai_optout=False)
        assert server.request_count("/.well-known/") == 0
    assert result.status_counts == {"ok": 1} and (tmp_path / f"{noai_id}.jpg").is_file()
    assert read_download_settings(tmp_path) == {"ai_optout": False}


@pytest.mark.parametrize(
    ("headers", "tdmrep", "reason"),
    [
        ((("X-Robots-Tag", "noimageai"),), None, "opted_out:noimageai"),
        ((("X-Robots-Tag", "mpds-pipeline: noai"),), None, "opted_out:noai"),
        ((("X-Robots-Tag", "otherbot: noai"),), None, None),
        ((("tdm-reservation", "1"),), None, "opted_out:tdm-reservation"),
        ((), b'[{"location": "/images/*", "tdm-reservation": 1}]', "opted_out:tdm-reservation"),
        ((), b'[{"location": "/elsewhere/*", "tdm-reservation": 1}]', None),
    ],
)
def test_each_signal_on_the_wire(tmp_path, headers, tdmrep, reason):
    with SampleImdbServer() as server:
        server.poster_optouts = {5: headers}
        server.tdmrep_json = tdmrep
        settings = ClientSettings(base_url=server.base_url, rate_per_second=0, timeout_s=5.0)
        download_images(_poster_items(server, [5, 6]), tmp_path, settings, processes=1)
    manifest = read_manifest(tmp_path).set_index("id")
    assert manifest.loc[6, "status"] == ("ok" if tdmrep is None or b"/images/" not in tdmrep else "opted_out")
    assert (manifest.loc[5, "reason"] if manifest.loc[5, "status"] != "ok" else None) == reason


def test_worker_processes_honour_the_signals_read_by_the_parent(tmp_path):
    with SampleImdbServer() as server:
        server.poster_optouts = {}
        server.tdmrep_json = b'[{"location": "/images/M/MV5Bt8s*", "tdm-reservation": 1}]'
        settings = ClientSettings(base_url=server.base_url, rate_per_second=0, timeout_s=5.0)
        download_images(_poster_items(server, [6, 8, 10, 12]), tmp_path, settings, processes=2)
        assert server.request_count("/.well-known/tdmrep.json") == 1  # the workers did not ask again
    statuses = read_manifest(tmp_path).set_index("id")["status"].to_dict()
    assert statuses == {6: "ok", 8: "opted_out", 10: "ok", 12: "ok"}
