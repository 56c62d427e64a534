"""The review page's loader and JSON API over plain HTTP (no browser needed)."""

from __future__ import annotations

import http.client
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpds_pipeline.base.folders import ImageFolder
from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.curate.manifest import MANIFEST_SCHEMA
from mpds_pipeline.curate.rectify import load_rectifications, record_sensor_check
from mpds_pipeline.review import REVIEW_COLUMNS, load_review_items
from mpds_pipeline.review.items import load_base_items
from mpds_pipeline.review.sample import FIRST_PARTITION, HOSTILE_TITLE, SECOND_PARTITION, write_sample_data
from mpds_pipeline.review.server import UnsafeBindError, check_bind, main, make_review_server
from mpds_pipeline.review.state import ReviewState


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_sample_data(root)
    return root


@pytest.fixture
def serve():
    """Start servers on free loopback ports; stop them after the test."""
    started = []

    def start(data_dir: Path, **kwargs):
        server = make_review_server(data_dir, host="127.0.0.1", port=0, **kwargs)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def client(data_dir, serve):
    server = serve(data_dir)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def save(http, movie_id, text, reviewer, expected_previous=None, replaced_text=None):
    return http.post(
        f"/api/items/{movie_id}/save",
        json={
            "text": text,
            "reviewer": reviewer,
            "expected_previous": expected_previous,
            "replaced_text": replaced_text,
        },
    )


def raw_get(server, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    """Send ``path`` byte for byte (httpx would normalise dot segments away)."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


# --------------------------------------------------------------------------- loader


def test_loader_joins_movies_captions_prompts_images(data_dir):
    items = load_review_items(DataLayout(data_dir)).set_index("id")
    assert list(items.reset_index().columns) == REVIEW_COLUMNS
    # Nosferatu's download was rejected: without a verified image it cannot reach the export.
    assert sorted(items.index) == [12, 25, 417, 10050]
    kid = items.loc[10050]
    assert kid["title"] == "The Kid"
    assert list(kid["genres"]) == ["Comedy", "Drama"]
    assert kid["partition"] == SECOND_PARTITION
    assert Path(kid["image_path"]) == data_dir / "images" / "posters" / SECOND_PARTITION / "10050.jpg"
    assert kid["blip2_caption"] == "a man and a child"
    assert kid["confidence"] == pytest.approx(-3.1)
    assert kid["synopsis_prompt"].startswith("The Kid. Genres: Comedy, Drama.")
    assert kid["current_text"] == "a man and a child. The Kid."
    assert pd.isna(kid["correction_text"])
    # The base keeps the others, marked, so the page can say how many it left out.
    base = load_base_items(DataLayout(data_dir)).set_index("id")
    nosferatu = base.loc[10120]
    assert not nosferatu["verified_image"] and pd.isna(nosferatu["image_path"])
    assert pd.isna(nosferatu["blip2_caption"]) and nosferatu["partition"] == SECOND_PARTITION
    assert base["verified_image"].sum() == 4


def write_manifest(folder: Path, rows: list[tuple[int, str]]) -> None:
    """A download manifest: (id, status) per poster, file <id>.jpg."""
    records = [
        {"id": i, "variant": 1, "file_name": f"{i}.jpg", "url": f"https://m.media-amazon.com/{i}.jpg", "status": status}
        for i, status in rows
    ]
    pq.write_table(pa.Table.from_pylist(records, schema=MANIFEST_SCHEMA), ImageFolder(folder).manifest)


def test_loader_copes_with_missing_files(tmp_path):
    assert load_review_items(DataLayout(tmp_path / "nothing")).empty
    # Only posters on disk: reviewable once the manifest says verified; the synopsis
    # prompt is built from movies if any.
    layout = DataLayout(tmp_path / "images-only")
    folder = layout.poster_images_dir(FIRST_PARTITION)
    folder.mkdir(parents=True)
    for name in ("7.jpg", "8.jpg", "9.jpg"):
        (folder / name).write_bytes(b"\xff\xd8 a poster")
    (folder / "notes.txt").write_text("ignored")
    assert load_review_items(layout).empty  # files, but no manifest: nothing verified them
    write_manifest(folder, [(7, "ok"), (8, "too_small"), (6, "ok")])  # 6: verified, file gone since
    (layout.poster_images_dir("not-a-partition")).mkdir(parents=True)
    (layout.poster_images_dir("not-a-partition") / "5.jpg").write_bytes(b"x")
    write_manifest(layout.poster_images_dir("not-a-partition"), [(5, "ok")])
    items = load_review_items(layout)
    assert list(items["id"]) == [7]
    assert items.loc[0, "partition"] == FIRST_PARTITION and items.loc[0, "title"] == ""
    assert pd.isna(items.loc[0, "current_text"])


def test_loader_reports_latest_correction(data_dir):
    folder = DataLayout(data_dir).rectifications_dir
    folder.mkdir()
    (folder / "batch.csv").write_text(
        "id,text,reviewer,created_at\n"
        "tt0000012,older fix,ann,2026-01-01T00:00:00Z\n"
        "12,newer fix,bob,2026-02-01T00:00:00Z\n"
    )
    items = load_review_items(DataLayout(data_dir)).set_index("id")
    assert items.loc[12, "correction_text"] == "newer fix"
    assert items.loc[12, "correction_reviewer"] == "bob"
    assert items.loc[12, "correction_at"] == pd.Timestamp("2026-02-01", tz="UTC")


# --------------------------------------------------------------------------- queue and items


def test_queue_orders_and_filters(client):
    ids = lambda **params: client.get("/api/queue", params=params).json()["ids"]  # noqa: E731
    # Lowest confidence first; Nosferatu (no verified image) is not in any queue.
    assert ids(order="confidence") == [10050, 12, 417, 25]
    assert ids(order="confidence", genre="drama") == [10050, 25]
    assert ids(order="confidence", partition=FIRST_PARTITION) == [12, 417, 25]
    assert ids(order="confidence", genre="Fantasy", partition=SECOND_PARTITION) == []
    assert save(client, 10050, "a tramp and a child", "ann").status_code == 200
    # The default order: never reviewed first, so a reload starts on unfinished work.
    assert ids() == ids(order="unreviewed") == [12, 417, 25, 10050]
    assert ids(order="confidence") == [10050, 12, 417, 25]
    assert client.get("/api/queue", params={"order": "random"}).status_code == 400
    facets = client.get("/api/facets").json()
    assert facets["partitions"] == [FIRST_PARTITION, SECOND_PARTITION]
    assert "Drama" in facets["genres"] and "Horror" not in facets["genres"]  # only Nosferatu is Horror


def test_item_payload_keeps_strings_as_data(client):
    item = client.get("/api/items/25").json()
    assert item["title"] == HOSTILE_TITLE  # JSON carries the text; the page writes it as text
    assert item["image_url"] == f"/images/posters/{FIRST_PARTITION}/25.jpg"
    assert item["version"] is None and item["editable_text"] == item["blip2_caption"]
    assert client.get("/api/items/tt0000025").json()["id"] == 25
    assert client.get("/api/items/999").status_code == 404
    assert client.get("/api/items/abc").status_code == 404


def test_page_is_static_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "alert" not in page.text  # no data is interpolated into the HTML
    assert "textContent" in client.get("/static/review.js").text
    assert "innerHTML" not in client.get("/static/review.js").text
    icon = client.get("/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert 'rel="icon" href="/favicon.svg"' in page.text


def test_export_state_follows_the_remerge(client, data_dir):
    """Saved -> waiting for the re-merge -> in the export once poster_prompts merged it
    and the export was written after."""
    layout = DataLayout(data_dir)
    assert client.get("/api/items/12").json()["export_state"] == "never_reviewed"
    assert save(client, 12, "a steam train", "ann").status_code == 200
    assert client.get("/api/items/12").json()["export_state"] == "waiting_for_remerge"

    prompts = pq.read_table(layout.poster_prompts_file).to_pandas()
    prompts.loc[prompts["id"] == 12, "vision_prompt"] = "a steam train"
    pq.write_table(pa.Table.from_pandas(prompts, preserve_index=False), layout.poster_prompts_file)
    os.utime(layout.poster_prompts_file, ns=(2_000_000_000, 2_000_000_000))
    assert client.get("/api/items/12").json()["export_state"] == "waiting_for_remerge"  # no export yet
    posters_csv = layout.export_dir / "posters.csv"
    posters_csv.parent.mkdir(parents=True)
    posters_csv.write_text("id,text\n12,a steam train. The Arrival of a Train.\n")
    os.utime(posters_csv, ns=(3_000_000_000, 3_000_000_000))
    assert client.get("/api/items/12").json()["export_state"] == "in_export"


def test_remerge_status_tells_whether_the_sensor_watches(data_dir):
    state, layout = ReviewState(data_dir), DataLayout(data_dir)
    now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    never = state.remerge_status(now)
    assert never["sensor_running"] is False and never["sensor_checked_at"] is None
    assert never["command"].endswith("dagster job execute -m mpds_pipeline -j export_dataset")
    assert never["folder"] == str(layout.rectifications_dir)
    record_sensor_check(layout.rectifications_sensor_file, layout.rectifications_dir, now - timedelta(seconds=40))
    assert state.remerge_status(now)["sensor_running"] is True
    assert state.remerge_status(now + timedelta(minutes=10))["sensor_running"] is False


# --------------------------------------------------------------------------- saving


def test_save_lands_in_the_store_in_the_merge_format(client, data_dir):
    response = save(client, 12, "  a steam   train arriving ", "ann", replaced_text="a train at a station")
    assert response.status_code == 200, response.text
    assert response.json()["saved"] is True
    item = client.get("/api/items/12").json()
    assert item["correction"]["text"] == "a steam train arriving"
    assert item["correction"]["reviewer"] == "ann"
    assert item["version"] == item["editable_text"] == "a steam train arriving"

    result = load_rectifications(DataLayout(data_dir).rectifications_dir, known_ids={12, 25})
    assert result.corrections == {12: "a steam train arriving"}
    assert result.rejected.empty
    row = result.accepted.iloc[0]
    assert row["reviewer"] == "ann"
    files = sorted(p.name for p in DataLayout(data_dir).rectifications_dir.iterdir() if not p.name.startswith("."))
    assert len(files) == 1 and files[0].startswith("review-")
    written = pd.read_csv(DataLayout(data_dir).rectifications_dir / files[0])
    assert written.loc[0, "replaced_text"] == "a train at a station"
    assert pd.Timestamp(written.loc[0, "created_at"]).tzinfo is not None


def test_second_reviewer_is_told_and_shown_the_other_text(client, data_dir):
    # Both loaded the poster while it had no correction (version None).
    assert save(client, 417, "a rocket in the moon's eye, drawn", "ann").status_code == 200
    conflict = save(client, 417, "a bullet in the moon", "bob")
    assert conflict.status_code == 409
    body = conflict.json()
    assert body["conflict"] is True and body["saved"] is False
    assert body["current_text"] == "a rocket in the moon's eye, drawn"
    assert body["current_reviewer"] == "ann"
    # Nothing of Bob's was written.
    assert load_rectifications(DataLayout(data_dir).rectifications_dir).corrections == {
        417: "a rocket in the moon's eye, drawn"
    }
    # Having seen Ann's text, Bob may save over it knowingly.
    again = save(client, 417, "a bullet in the moon", "bob", expected_previous=body["current_text"])
    assert again.status_code == 200
    assert client.get("/api/items/417").json()["correction"]["reviewer"] == "bob"


def test_save_rejects_bad_requests(client, data_dir):
    assert save(client, 12, "text", "").status_code == 400  # no reviewer, no default
    assert save(client, 12, "   ", "ann").status_code == 400
    assert save(client, 999, "text", "ann").status_code == 404
    form = client.post("/api/items/12/save", content=b"text=x", headers={"Content-Type": "text/plain"})
    assert form.status_code == 415  # a cross-site form cannot post JSON without a preflight
    broken = client.post("/api/items/12/save", content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert not DataLayout(data_dir).rectifications_dir.exists() or not any(
        p.suffix == ".csv" for p in DataLayout(data_dir).rectifications_dir.iterdir()
    )


def test_reviewer_default_fills_an_empty_name(data_dir, serve):
    server = serve(data_dir, reviewer_default="carol")
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/api/config").json() == {"reviewer_default": "carol"}
        assert save(http, 12, "a train", "").status_code == 200
        assert http.get("/api/items/12").json()["correction"]["reviewer"] == "carol"


def test_progress_counts_per_reviewer(client):
    assert client.get("/api/progress").json() == {
        "total": 4,
        "reviewed": 0,
        "left": 4,
        "reviewers": [],
        "without_verified_image": 1,
    }
    assert save(client, 12, "a train", "ann").status_code == 200
    assert save(client, 25, "a man in a hat", "ann").status_code == 200
    assert save(client, 25, "a man in a bowler hat", "bob", expected_previous="a man in a hat").status_code == 200
    progress = client.get("/api/progress").json()
    assert (progress["total"], progress["reviewed"], progress["left"]) == (4, 2, 2)
    assert progress["reviewers"] == [
        {"reviewer": "ann", "posters": 1, "saves": 2},
        {"reviewer": "bob", "posters": 1, "saves": 1},
    ]
    drama = client.get("/api/progress", params={"genre": "Drama"}).json()
    assert (drama["total"], drama["reviewed"], drama["left"]) == (2, 1, 1)


def test_pipeline_changes_show_without_restart(client, data_dir):
    path = DataLayout(data_dir).poster_prompts_file
    table = pq.read_table(path).to_pandas()
    table.loc[table["id"] == 12, "text"] = "a new integrated text"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path)
    os.utime(path, ns=(1, 1))  # a distinct mtime even on coarse-clock filesystems
    assert client.get("/api/items/12").json()["current_text"] == "a new integrated text"


# --------------------------------------------------------------------------- images and access


def test_images_served_only_from_the_images_folder(data_dir, serve, tmp_path):
    (data_dir / "secret.jpg").write_bytes(b"secret")
    (tmp_path / "outside.jpg").write_bytes(b"outside")
    link = data_dir / "images" / "posters" / FIRST_PARTITION / "99.jpg"
    link.symlink_to(tmp_path / "outside.jpg")
    (data_dir / "images" / "notes.txt").write_text("not an image")
    server = serve(data_dir)

    ok = raw_get(server, f"/images/posters/{FIRST_PARTITION}/12.jpg")
    assert ok.status == 200 and ok.getheader("Content-Type") == "image/jpeg"
    for path in [
        "/images/../secret.jpg",
        "/images/%2e%2e/secret.jpg",
        "/images/posters/..%2f..%2fsecret.jpg",
        "/images/posters/%2e%2e%2f%2e%2e%2f..%2fsecret.jpg",
        "/images/..%5csecret.jpg",
        "/images//etc/passwd",
        "/images/%2fetc%2fpasswd",
        f"/images/posters/{FIRST_PARTITION}/99.jpg",  # a symlink out of the folder
        "/images/notes.txt",
        "/images/",
        "/images/posters/x%00.jpg",
        "/secret.jpg",
    ]:
        assert raw_get(server, path).status == 404, path


def test_non_loopback_bind_needs_a_token():
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    with pytest.raises(UnsafeBindError):
        check_bind("0.0.0.0", None)
    with pytest.raises(UnsafeBindError):
        make_review_server(Path("unused"), host="192.0.2.10", port=0)
    check_bind("0.0.0.0", "s3cret-token")
    with pytest.raises(UnsafeBindError):
        check_bind("127.0.0.1", "a; b=c")  # would break the cookie
    assert main(["--host", "0.0.0.0", "--port", "0", "--data-dir", "unused"]) == 2


def test_token_required_on_every_request(data_dir, serve):
    server = serve(data_dir, token="s3cret-token")
    base = server.url
    with httpx.Client(base_url=base) as http:
        for path in ["/", "/static/review.js", "/api/queue", f"/images/posters/{FIRST_PARTITION}/12.jpg"]:
            assert http.get(path).status_code == 401, path
        assert save(http, 12, "x", "ann").status_code == 401
        assert http.get("/api/queue", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get("/api/queue", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert http.get("/api/queue", headers={"X-Review-Token": "s3cret-token"}).status_code == 200
        # Opening the page with ?token= sets a cookie that carries it from then on.
        page = http.get("/", params={"token": "s3cret-token"})
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        assert http.get(f"/images/posters/{FIRST_PARTITION}/12.jpg").status_code == 200
        assert save(http, 12, "a train", "ann").status_code == 200


def test_loopback_server_refuses_foreign_host_header(data_dir, serve):
    server = serve(data_dir)
    assert raw_get(server, "/api/queue", headers={"Host": "evil.example:8765"}).status == 403
    assert raw_get(server, "/api/queue", headers={"Host": "localhost:8765"}).status == 200
    assert raw_get(server, "/api/queue", headers={"Host": "[::1]:8765"}).status == 200


def test_loader_builds_the_synopsis_prompt_without_poster_prompts(data_dir):
    DataLayout(data_dir).poster_prompts_file.unlink()
    items = load_review_items(DataLayout(data_dir)).set_index("id")
    assert items.loc[10050, "synopsis_prompt"] == (
        "The Kid. Genres: Comedy, Drama. Starring: Actor 10050. The story of The Kid."
    )
    assert pd.isna(items.loc[10050, "current_text"])
