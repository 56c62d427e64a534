"""The sample IMDb server: deterministic content, page shapes, images, faults, counting."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from mpds_pipeline.sample_server import FaultPlan, FaultRule, SampleImdbServer, sample_person, sample_title
from mpds_pipeline.sample_server.content import FOREIGN, PERSON_ID_RANGE
from mpds_pipeline.sample_server.server import RequestRecord

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server():
    with SampleImdbServer() as srv:
        yield srv


def next_data(page: bytes) -> dict:
    match = re.search(rb'<script id="__NEXT_DATA__" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def test_content_is_deterministic_and_covers_every_case():
    titles = [sample_title(i) for i in range(1, 51)]
    assert titles == [sample_title(i) for i in range(1, 51)]
    assert sample_title(1, seed=1) != sample_title(1, seed=0)
    ok = [t for t in titles if t["status"] == "ok"]
    assert any(t["status"] == "missing" and not t["soft_404"] for t in titles)
    assert any(t["status"] == "missing" and t["soft_404"] for t in titles)
    assert any(t["status"] == "redirect" and sample_title(t["redirect_to"])["status"] == "ok" for t in titles)
    assert any(t["is_adult"] and "Adult" in t["genres"] for t in ok)
    assert {t["language"] for t in ok} >= {"en", "fr", "es"}
    assert any(t["poster_token"] is None for t in ok) and any(t["small_poster"] for t in ok)
    assert any(t["plot"] is None for t in ok) and any(not t["genres"] for t in ok) and any(not t["cast"] for t in ok)
    assert {t["layout"] for t in ok} == {"next", "classic"}
    assert {"R", "PG-13"} <= {t["certificate"] for t in ok}
    persons = [sample_person(i) for i in range(*PERSON_ID_RANGE)]
    assert any(p["status"] == "missing" for p in persons)
    actors = [p for p in persons if p["status"] == "ok" and p["is_actor"]]
    assert any(p["image_token"] for p in actors) and any(not p["image_token"] for p in actors)
    assert any(
        p["status"] == "ok" and p["professions"][0] in ("director", "writer") and not p["is_actor"] for p in persons
    )
    # Cast members are actors in the person range, with unique names.
    for t in ok:
        names = [name for _, name in t["cast"]]
        assert len(names) == len(set(names))
        for pid, _ in t["cast"]:
            assert PERSON_ID_RANGE[0] <= pid <= PERSON_ID_RANGE[1] and sample_person(pid)["is_actor"]


def test_foreign_plots_are_recognised_by_a_language_detector():
    import lingua

    L = lingua.Language
    detector = lingua.LanguageDetectorBuilder.from_languages(
        L.ENGLISH, L.FRENCH, L.SPANISH, L.GERMAN, L.ITALIAN
    ).build()
    codes = {L.FRENCH: "fr", L.SPANISH: "es", L.GERMAN: "de", L.ITALIAN: "it"}
    for language, (_titles, plots) in FOREIGN.items():
        for plot in plots:
            assert codes.get(detector.detect_language_of(plot)) == language, plot


def test_next_and_classic_title_pages_carry_the_truth(server):
    truth = sample_title(1)
    assert truth["layout"] == "next"
    page = httpx.get(server.base_url + "/title/tt0000001").content
    props = next_data(page)["props"]["pageProps"]
    above = props["aboveTheFoldData"]
    assert above["titleText"]["text"] == truth["title"] and above["releaseYear"]["year"] == truth["year"]
    assert [g["text"] for g in above["genres"]["genres"]] == truth["genres"]
    assert above["primaryImage"]["url"].startswith(server.base_url + "/images/M/")
    cast = [
        (e["node"]["name"]["id"], e["node"]["name"]["nameText"]["text"])
        for e in props["mainColumnData"]["cast"]["edges"]
    ]
    assert cast == [(f"nm{pid:07d}", name) for pid, name in truth["cast"]]
    assert b"application/ld+json" in page

    classic = sample_title(4)
    assert classic["layout"] == "classic"
    page = httpx.get(server.base_url + "/title/tt0000004").content.decode()
    assert b"__NEXT_DATA__" not in page.encode()
    assert f'itemprop="name" class="">{classic["title"]}' in page
    assert classic["genres"] and all(f'itemprop="genre">{g}<' in page for g in classic["genres"])


def test_status_codes_robots_and_person_pages(server):
    assert httpx.get(server.base_url + "/title/tt0000007").status_code == 404
    soft = httpx.get(server.base_url + "/title/tt0000019")
    assert soft.status_code == 200 and b"<title>404 Error - IMDb</title>" in soft.content
    redirect = httpx.get(server.base_url + "/title/tt0000011")
    assert redirect.status_code == 301 and redirect.headers["location"] == "/title/tt0000010/"
    robots = httpx.get(server.base_url + "/robots.txt").text
    assert "Disallow: /search/" in robots and "Allow: /title/" in robots
    person = sample_person(1)
    above = next_data(httpx.get(server.base_url + "/name/nm0000001").content)["props"]["pageProps"]["aboveTheFold"]
    assert above["nameText"]["text"] == person["name"]
    assert [p["category"]["id"] for p in above["primaryProfessions"]] == person["professions"]


def test_images_full_size_resized_and_small(server):
    with httpx.Client() as client:
        check_images(client, server)


def check_images(client: httpx.Client, server) -> None:
    sizes = []
    for item_id in range(1, 30):
        truth = sample_title(item_id)
        if truth.get("poster_token") is None:
            continue
        full = client.get(f"{server.base_url}/images/M/{truth['poster_token']}._V1_.jpg")
        assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
        image = Image.open(io.BytesIO(full.content))
        assert image.format == "JPEG"
        sizes.append((truth["small_poster"], len(full.content)))
        if item_id == 1:
            resized = client.get(f"{server.base_url}/images/M/{truth['poster_token']}._V1_QL75_UX380_.jpg")
            assert Image.open(io.BytesIO(resized.content)).size[0] == 380
    small = [size for is_small, size in sizes if is_small]
    normal = [size for is_small, size in sizes if not is_small]
    assert small and all(size < 5_000 for size in small)
    assert normal and all(10_000 <= size <= 80_000 for size in normal)


@pytest.mark.parametrize("kind", ["429", "503", "waf", "waf403", "truncate", "reset"])
def test_faults_are_injected_on_request(kind):
    with SampleImdbServer(
        faults=FaultPlan([FaultRule(kind, path="^/title/tt0000001$", times=1, retry_after="7")])
    ) as srv:
        url = srv.base_url + "/title/tt0000001"
        if kind in ("truncate", "reset"):
            with pytest.raises(httpx.TransportError):
                httpx.get(url)
        else:
            resp = httpx.get(url)
            expected = {"429": 429, "503": 503, "waf": 202, "waf403": 403}[kind]
            assert resp.status_code == expected
            if kind == "429":
                assert resp.headers["retry-after"] == "7"
            if kind.startswith("waf"):
                assert "x-amzn-waf-action" in resp.headers and b"__NEXT_DATA__" not in resp.content
        assert httpx.get(url).status_code == 200  # times=1: the next request is served normally
        assert [r.fault for r in srv.requests] == [kind, None]


def test_fault_plan_text_form_and_runtime_change(server):
    plan = FaultPlan.parse("429,rate=0.5,retry_after=2;waf,ids=5-7+9;slow,path=^/name/,delay_s=0.1,times=1")
    assert [r.kind for r in plan.rules] == ["429", "waf", "slow"]
    assert plan.rules[1].ids == frozenset({5, 6, 7, 9}) and plan.rules[0].retry_after == "2"
    with pytest.raises(ValueError):
        FaultPlan.parse("teapot")
    server.set_faults("waf,ids=2")
    try:
        assert httpx.get(server.base_url + "/title/tt0000002").status_code == 202
        assert httpx.get(server.base_url + "/title/tt0000003").status_code == 200
    finally:
        server.set_faults(None)


def test_max_requests_in_any_window_counts_sliding_windows():
    srv = SampleImdbServer()
    try:
        for t in (0.0, 0.5, 0.99, 1.0, 1.6, 1.7, 1.8):
            srv._log(RequestRecord(t, "/title/tt0000001", 200, None))
        # [0.99, 1.99) holds 0.99, 1.0, 1.6, 1.7, 1.8
        assert srv.max_requests_in_any_window(1.0) == 5
        assert srv.max_requests_in_any_window(0.5) == 3
    finally:
        srv._httpd.server_close()


def test_runs_as_a_command(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "mpds_pipeline.sample_server", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        base = re.search(r"http://\S+", line).group(0)
        assert httpx.get(base + "/title/tt0000001").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
