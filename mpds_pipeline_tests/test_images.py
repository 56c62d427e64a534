"""Image download and verification against a loopback http.server serving hostile files."""
from __future__ import annotations

import hashlib
import io
import random
import struct
import threading
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from PIL import Image

from mpds_pipeline.curate.images import download_actor_images, download_images, read_manifest
from mpds_pipeline.imdb.client import ClientSettings


def noise_image(width: int, height: int, fmt: str = "JPEG", seed: int = 0) -> bytes:
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (width, height), bytes(rng.getrandbits(8) for _ in range(width * height * 3)))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = 20_000) -> bytes:
    """A small PNG whose header claims side x side grey pixels (400 M by default)."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    rows = zlib.compress(b"\x00" * (side + 1) * 64, 9)  # only a few rows' worth; the claim is what matters
    padding = png_chunk(b"tEXt", b"pad\x00" + b"x" * 8000)  # over the 5 KB minimum
    return b"\x89PNG\r\n\x1a\n" + header + padding + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int, jpeg: bytes) -> bytes:
    """``jpeg`` with its SOF0 frame header rewritten to claim ``width`` x ``height``."""
    at = jpeg.index(b"\xff\xc0")
    return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9:]


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
}


class ImageServer:
    """A real http.server in a thread; counts the requests per path."""

    def __init__(self):
        self.hits: Counter[str] = Counter()
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
                body, kind = FILES.get(self.path, (None, None))
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
        return ClientSettings(base_url=self.base, rate_per_second=0, concurrency=4, timeout_s=10,
                              max_retries=0, backoff_base_s=0.01, backoff_max_s=0.01,
                              extra_allowed_hosts=(), obey_robots=False)


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
    paths = ["/good.jpg", "/good.png", "/bomb.png", "/bomb.jpg", "/truncated.jpg", "/page.jpg",
             "/tiny.jpg", "/empty.jpg", "/elsewhere.jpg", "/missing.jpg"]
    items = [(n, server.base + p) for n, p in enumerate(paths, start=1)]
    result = download_images(items, tmp_path, server.settings())
    rows = by_id(result)
    status = {paths[i - 1]: (rows[i]["status"], rows[i]["reason"] or "") for i in rows}

    assert status["/good.jpg"][0] == "ok"
    assert status["/good.png"][0] == "ok"
    assert status["/bomb.png"][0] == "invalid" and "decompression bomb" in status["/bomb.png"][1]
    assert status["/bomb.jpg"][0] == "invalid" and "decompression bomb" in status["/bomb.jpg"][1]
    assert status["/truncated.jpg"][0] == "invalid" and "truncated" in status["/truncated.jpg"][1]
    assert status["/page.jpg"] == ("invalid", "not an image (an HTML page)")
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
    assert rows[1]["sha256"] == hashlib.sha256(GOOD_JPEG).hexdigest()
    assert (rows[1]["width"], rows[1]["height"], rows[1]["bytes"]) == (160, 240, len(GOOD_JPEG))
    assert not list(tmp_path.glob("*.part"))

    manifest = read_manifest(tmp_path)
    assert list(manifest.columns)[:4] == ["id", "variant", "file_name", "url"]
    assert {"bytes", "width", "height", "format", "sha256", "status", "reason"} <= set(manifest.columns)
    assert len(manifest) == len(paths)
    assert result.status_counts == {"ok": 2, "invalid": 5, "too_small": 1, "refused": 1, "http_error": 1}


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
    result = download_images([(1, server.base + "/tiny.jpg"), (2, server.base + "/good.jpg")], tmp_path,
                             server.settings(), min_bytes=100, resize_to=64)
    rows = by_id(result)
    assert rows[1]["status"] == rows[2]["status"] == "ok"
    with Image.open(tmp_path / "2.jpg") as resized:
        assert max(resized.size) == 64 and resized.size == (43, 64)


def test_actor_images_take_one_or_two_photos(server, tmp_path):
    actors = pd.DataFrame([
        {"id": 206, "name": "Keanu Reeves", "image_url": server.base + "/good.jpg",
         "image_urls": [server.base + "/good2.jpg", server.base + "/good.png"]},
        {"id": 1, "name": "Carmencita", "image_url": server.base + "/good2.jpg", "image_urls": None},
    ])
    result = download_actor_images(actors, tmp_path, server.settings(), per_actor=2)
    assert sorted(p.name for p in tmp_path.glob("*.jpg")) == ["1.jpg", "206.jpg", "206_2.jpg"]
    assert result.status_counts == {"ok": 3}


@pytest.mark.parametrize("path", ["/challenge.jpg", "/waf.jpg"])
def test_a_waf_challenge_stops_the_run_and_writes_nothing(server, tmp_path, path):
    result = download_images([(1, server.base + path)], tmp_path, server.settings())
    row = by_id(result)[1]
    assert result.blocked and row["status"] == "blocked" and "WAF" in row["reason"]
    assert not (tmp_path / "1.jpg").exists()
