"""Image download and verification against a loopback http.server serving hostile files."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from PIL import Image

from mpds_pipeline.base.folders import ImageFolder
from mpds_pipeline.curate.image_checks import CAPTIONING, ImageLimits
from mpds_pipeline.curate.images import (
    download_actor_images,
    download_images,
    download_variants,
    read_manifest,
)
from mpds_pipeline.curate.manifest import record_decode_results
from mpds_pipeline.net.client_settings import ClientSettings

from .image_samples import jpeg_claiming, noise_image, png_bomb, undecodable_jpeg

GOOD_JPEG = noise_image(160, 240, seed=1)
FILES = {
    "/good.jpg": (GOOD_JPEG, "image/jpeg"),
    "/good2.jpg": (noise_image(120, 180, seed=2), "image/jpeg"),
    "/good.png": (noise_image(100, 150, "PNG", seed=3), "image/png"),
    "/bomb.png": (png_bomb(), "image/png"),
    "/bomb.jpg": (jpeg_claiming(60_000, 60_000, GOOD_JPEG), "image/jpeg"),
    "/truncated.jpg": (GOOD_JPEG[: len(GOOD_JPEG) * 2 // 3], "image/jpeg"),
    "/page.jpg": (b"<!DOCTYPE html><html><body>" + b"<p>Sign in</p>" * 600 + b"</body></html>", "image/jpeg"),
    "/tiny.jpg": (noise_image(8, 8, seed=4), "image/jpeg"),
    "/empty.jpg": (b"", "image/jpeg"),
    "/challenge.jpg": (b"<html><script>window.gokuProps = {};</script>" + b"x" * 6000 + b"</html>", "text/html"),
    "/waf.jpg": (GOOD_JPEG, "image/jpeg"),  # a real image, but the WAF header says challenged
    "/typed-html.jpg": (GOOD_JPEG, "text/html; charset=utf-8"),  # image bytes, but the server says HTML
    "/undecodable.jpg": (undecodable_jpeg(GOOD_JPEG), "image/jpeg"),  # complete, but only a decode fails it
}
MANY = {f"/many/{n}.jpg": (noise_image(64, 96, seed=100 + n), "image/jpeg") for n in range(12)}
FILES.update(MANY)


class ImageServer:
    """A real http.server in a thread; counts the requests per path. A path under
    ``/gated/`` is answered (as the path without the prefix) once ``gate`` is set."""

    def __init__(self):
        self.hits: Counter[str] = Counter()
        self.gate = threading.Event()
        self.robots: bytes | None = None  # served as /robots.txt when set
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.hits[self.path] += 1
                if self.path == "/elsewhere.jpg":
                    # Same server, other host name: off the allowlist.
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{server.port}/good.jpg")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = self.path
                served = {**FILES, "/robots.txt": (server.robots, "text/plain")} if server.robots else FILES
                if path.startswith("/gated/"):
                    server.gate.wait(10)
                    path = path.removeprefix("/gated")
                body, kind = served.get(path, (None, None))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if self.path == "/waf.jpg":
                    self.send_header("x-amzn-waf-action", "challenge")
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def settings(self) -> ClientSettings:
        return ClientSettings(
            base_url=self.base,
            rate_per_second=0,
            concurrency=4,
            timeout_s=10,
            max_retries=0,
            backoff_base_s=0.01,
            backoff_max_s=0.01,
            extra_allowed_hosts=(),
            obey_robots=False,
        )


@pytest.fixture
def server():
    srv = ImageServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def by_id(result) -> dict[int, dict]:
    return {int(r["id"]): r for r in result.manifest.to_dict("records")}


def test_every_hostile_case_is_rejected_with_a_reason(server, tmp_path):
    paths = [
        "/good.jpg",
        "/good.png",
        "/bomb.png",
        "/bomb.jpg",
        "/truncated.jpg",
        "/page.jpg",
        "/tiny.jpg",
        "/empty.jpg",
        "/elsewhere.jpg",
        "/missing.jpg",
        "/typed-html.jpg",
    ]
    items = [(n, server.base + p) for n, p in enumerate(paths, start=1)]
    result = download_images(items, tmp_path, server.settings())
    rows = by_id(result)
    status = {paths[i - 1]: (rows[i]["status"], rows[i]["reason"] or "") for i in rows}

    assert status["/good.jpg"][0] == "ok"
    assert status["/good.png"][0] == "ok"
    assert status["/bomb.png"][0] == "invalid" and "decompression bomb" in status["/bomb.png"][1]
    assert status["/bomb.jpg"][0] == "invalid" and "decompression bomb" in status["/bomb.jpg"][1]
    assert status["/truncated.jpg"][0] == "invalid" and "no end-of-image marker" in status["/truncated.jpg"][1]
    assert status["/page.jpg"] == ("invalid", "not an image (an HTML page)")
    assert status["/typed-html.jpg"] == ("invalid", "not an image (Content-Type text/html)")
    assert status["/tiny.jpg"][0] == "too_small"
    assert status["/empty.jpg"] == ("invalid", "empty body")
    assert status["/elsewhere.jpg"][0] == "refused" and "localhost" in status["/elsewhere.jpg"][1]
    assert status["/missing.jpg"] == ("http_error", "HTTP 404")
    assert server.hits["/good.jpg"] == 1  # the refused redirect never reached its target

    # Only verified files are on disk; the JPEG kept its bytes, the PNG became a JPEG.
    assert sorted(p.name for p in tmp_path.glob("*.jpg")) == ["1.jpg", "2.jpg"]
    assert (tmp_path / "1.jpg").read_bytes() == GOOD_JPEG
    with Image.open(tmp_path / "2.jpg") as converted:
        assert converted.format == "JPEG" and converted.size == (100, 150)
    assert rows[2]["format"] == "PNG"
    # The JPEG was checked for structure only; the PNG had to be decoded to become a JPEG.
    assert rows[1]["verified"] == "structure" and pd.isna(rows[1]["decoded_by"])
    assert (rows[2]["verified"], rows[2]["decoded_by"]) == ("decoded", "download")
    assert result.verification == {"verified_decoded": 1, "verified_structure_only": 1, "decode_failures": 0}
    assert rows[1]["sha256"] == hashlib.sha256(GOOD_JPEG).hexdigest()
    assert (rows[1]["width"], rows[1]["height"], rows[1]["bytes"]) == (160, 240, len(GOOD_JPEG))
    assert not list(tmp_path.glob("*.part"))

    manifest = read_manifest(tmp_path)
    assert list(manifest.columns)[:4] == ["id", "variant", "file_name", "url"]
    assert {"bytes", "width", "height", "format", "sha256", "status", "reason"} <= set(manifest.columns)
    assert len(manifest) == len(paths)
    assert result.status_counts == {"ok": 2, "invalid": 6, "too_small": 1, "refused": 1, "http_error": 1}


def test_rerun_fetches_nothing_verified_and_refetches_a_damaged_file(server, tmp_path):
    items = [(1, server.base + "/good.jpg"), (2, server.base + "/good2.jpg")]
    first = download_images(items, tmp_path, server.settings())
    assert first.status_counts == {"ok": 2} and first.fetched == 2
    assert server.hits["/good.jpg"] == server.hits["/good2.jpg"] == 1

    second = download_images(items, tmp_path, server.settings())
    assert second.fetched == 0 and second.reused == 2
    assert server.hits["/good.jpg"] == server.hits["/good2.jpg"] == 1
    assert sorted(second.manifest["id"]) == [1, 2]

    (tmp_path / "2.jpg").write_bytes(b"damaged")  # sha256 no longer matches the manifest
    third = download_images(items + [(3, server.base + "/tiny.jpg")], tmp_path, server.settings())
    assert third.fetched == 2 and third.reused == 1
    assert server.hits["/good2.jpg"] == 2 and server.hits["/good.jpg"] == 1
    assert (tmp_path / "2.jpg").read_bytes() == FILES["/good2.jpg"][0]
    # The manifest merges runs: all three ids, one row each.
    assert read_manifest(tmp_path)["id"].tolist() == [1, 2, 3]


def test_min_bytes_and_resize_are_configurable(server, tmp_path):
    result = download_images(
        [(1, server.base + "/tiny.jpg"), (2, server.base + "/good.jpg")],
        tmp_path,
        server.settings(),
        limits=ImageLimits(min_bytes=100, resize_to=64),
    )
    rows = by_id(result)
    assert rows[1]["status"] == rows[2]["status"] == "ok"
    with Image.open(tmp_path / "2.jpg") as resized:
        assert max(resized.size) == 64 and resized.size == (43, 64)


def test_actor_images_take_one_or_two_photos(server, tmp_path):
    actors = pd.DataFrame(
        [
            {
                "id": 206,
                "name": "Keanu Reeves",
                "image_url": server.base + "/good.jpg",
                "image_urls": [server.base + "/good2.jpg", server.base + "/good.png"],
            },
            {"id": 1, "name": "Carmencita", "image_url": server.base + "/good2.jpg", "image_urls": None},
        ]
    )
    result = download_actor_images(actors, tmp_path, server.settings(), per_actor=2)
    assert sorted(p.name for p in tmp_path.glob("*.jpg")) == ["1.jpg", "206.jpg", "206_2.jpg"]
    assert result.status_counts == {"ok": 3}


@pytest.mark.parametrize("path", ["/challenge.jpg", "/waf.jpg"])
def test_a_waf_challenge_stops_the_run_and_writes_nothing(server, tmp_path, path):
    result = download_images([(1, server.base + path)], tmp_path, server.settings())
    row = by_id(result)[1]
    assert result.blocked and row["status"] == "blocked" and "WAF" in row["reason"]
    assert not (tmp_path / "1.jpg").exists()


def test_structure_mode_defers_what_only_a_decode_finds(server, tmp_path):
    """The trade-off, both ways: the default keeps a complete JPEG whose pixels do not
    decode (a user of the pixels finds it later); ``verify="decode"`` rejects it now."""
    items = [(1, server.base + "/undecodable.jpg"), (2, server.base + "/good.jpg")]
    deferred = by_id(download_images(items, tmp_path / "structure", server.settings()))
    assert deferred[1]["status"] == "ok" and deferred[1]["verified"] == "structure"

    decoded = by_id(download_images(items, tmp_path / "decode", server.settings(), verify="decode"))
    assert decoded[1]["status"] == "invalid" and "corrupt image" in decoded[1]["reason"]
    assert decoded[2]["status"] == "ok" and (decoded[2]["verified"], decoded[2]["decoded_by"]) == (
        "decoded",
        "download",
    )
    assert not (tmp_path / "decode" / "1.jpg").exists()


def test_a_decode_failure_is_not_brought_back_by_a_rerun(server, tmp_path):
    items = [(1, server.base + "/undecodable.jpg"), (2, server.base + "/good.jpg")]
    download_images(items, tmp_path, server.settings())
    record = record_decode_results(tmp_path, {"1.jpg": "OSError: broken data stream", "2.jpg": None}, CAPTIONING)
    assert (record.failed, record.decoded) == (1, 1)

    rerun = download_images(items, tmp_path, server.settings())
    assert rerun.fetched == 1 and server.hits["/undecodable.jpg"] == 2  # retried: the server might have fixed it
    row = by_id(rerun)[1]
    # Same bytes as before: still invalid, with the reason the decode gave.
    assert row["status"] == "invalid" and row["reason"] == "does not decode (captioning): OSError: broken data stream"
    assert read_manifest(tmp_path).set_index("id").loc[2, "verified"] == "decoded"
    assert rerun.verification == {"verified_decoded": 1, "verified_structure_only": 0, "decode_failures": 1}


def test_two_processes_share_the_list_and_report_progress(server, tmp_path):
    lines: list[str] = []
    items = [(n, server.base + path) for n, path in enumerate(MANY, start=1)]
    result = download_images(items, tmp_path, server.settings(), processes=2, log=lines.append)
    assert result.processes == 2 and result.status_counts == {"ok": len(MANY)} and result.fetched == len(MANY)
    assert sorted(read_manifest(tmp_path)["id"]) == list(range(1, len(MANY) + 1))
    for n, path in enumerate(MANY, start=1):
        assert (tmp_path / f"{n}.jpg").read_bytes() == MANY[path][0]
    assert all(server.hits[path] == 1 for path in MANY)
    assert lines[-1].startswith(f"images {tmp_path.name}: {len(MANY)}/{len(MANY)} images (100.0%)")


def test_a_waf_challenge_in_one_process_stops_them_all(server, tmp_path):
    # Shards are interleaved: process 1 gets the challenge first; process 2 gets six
    # gated images, the first of them held at the server until the challenge is seen.
    items = [(1, server.base + "/waf.jpg")] + [(n, server.base + "/gated" + p) for n, p in enumerate(MANY, start=2)]
    settings = server.settings()
    settings.concurrency = 2  # one request in flight per process
    result = download_images(items, tmp_path, settings, processes=2, log=lambda line: server.gate.set())
    assert result.blocked and result.status_counts.get("blocked") == 1
    # Process 2 was told to stop before its first request was answered: it finished at
    # most that one (maybe one more) instead of all six.
    assert result.fetched < 1 + 6


def test_a_script_without_a_main_guard_can_use_processes(server, tmp_path):
    """Workers are fresh interpreters running only the worker module: a caller's
    unguarded top-level code is never run again (multiprocessing's spawn would)."""
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(f"""
        from pathlib import Path
        from mpds_pipeline.curate.images import download_images
        from mpds_pipeline.net.client import ClientSettings

        print("top level ran")
        settings = ClientSettings(base_url={server.base!r}, rate_per_second=0, concurrency=4, max_retries=0,
                                  extra_allowed_hosts=(), obey_robots=False)
        items = [(n, {server.base!r} + "/many/" + str(n) + ".jpg") for n in range(6)]
        result = download_images(items, Path({str(tmp_path / "out")!r}), settings, processes=2)
        print(result.processes, result.status_counts)
    """)
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["top level ran", "2 {'ok': 6}"]


def test_a_run_saves_its_manifest_as_it_goes(server, tmp_path):
    """With a checkpoint after every row, the first image's row is on disk while the
    second is still held at the server: a killed run would keep it."""
    seen: dict = {}

    def release_once_saved() -> None:
        deadline = time.monotonic() + 20
        while not ImageFolder(tmp_path).manifest.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["ids"] = read_manifest(tmp_path)["id"].tolist()
        server.gate.set()

    watcher = threading.Thread(target=release_once_saved)
    watcher.start()
    items = [(1, 1, server.base + "/good.jpg"), (2, 1, server.base + "/gated/good2.jpg")]
    result = download_variants(items, tmp_path, server.settings(), ImageLimits(), checkpoint_s=0)
    watcher.join()
    assert seen["ids"] == [1] and result.status_counts == {"ok": 2}
    assert read_manifest(tmp_path)["id"].tolist() == [1, 2]


def test_an_image_over_the_cap_is_refused_by_the_client_unread(server, tmp_path):
    """The cap travels to the client: a Content-Length over it is refused before the body
    is read, recorded as too_large with the client's reason, and nothing is written."""
    result = download_images(
        [(1, server.base + "/good.jpg")],
        tmp_path,
        server.settings(),
        limits=ImageLimits(min_bytes=100, max_bytes=len(GOOD_JPEG) - 1),
    )
    row = by_id(result)[1]
    assert row["status"] == "too_large" and row["reason"].startswith("body too large: Content-Length")
    assert not list(tmp_path.glob("*.jpg"))


def test_a_crawl_delay_keeps_the_download_in_one_process(server, tmp_path):
    """Each process's client would apply the delay on its own: together they would be
    N times faster than robots.txt asks."""
    server.robots = b"User-agent: *\nCrawl-delay: 0.001\n"
    settings = server.settings()
    settings.obey_robots = True
    items = [(n, server.base + path) for n, path in enumerate(list(MANY)[:4], start=1)]
    result = download_images(items, tmp_path / "delayed", settings, processes=2)
    assert result.processes == 1 and result.status_counts == {"ok": 4}

    server.robots = b"User-agent: *\nDisallow: /private/\n"
    assert download_images(items, tmp_path / "free", settings, processes=2).processes == 2
