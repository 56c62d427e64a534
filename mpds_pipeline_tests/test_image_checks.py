"""The structure checks (one case each), the full decode, and the manifest's decode
results: recorded under a lock, mapped to partition folders, read by the export."""

from __future__ import annotations

import threading

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpds_pipeline.base.folders import ImageFolder
from mpds_pipeline.curate import manifest as manifest_module
from mpds_pipeline.curate.export import write_export
from mpds_pipeline.curate.image_checks import (
    CAPTIONING,
    LORA_LATENTS,
    ImageLimits,
    check_structure,
    decode_image,
    verify_body,
)
from mpds_pipeline.curate.manifest import (
    manifest_lock,
    merge_into_manifest,
    read_manifest,
    record_decode_results,
    record_poster_decode_results,
    verification_counts,
)

from .image_samples import jpeg_claiming, noise_image, png_bomb, undecodable_jpeg, with_exif_thumbnail

JPEG = noise_image(160, 240, seed=1)
PNG = noise_image(100, 150, "PNG", seed=3)
WEBP = noise_image(100, 150, "WEBP", seed=4, lossless=True)
GIF = noise_image(120, 120, "GIF", seed=5)
HTML = b"<!DOCTYPE html><html><body>" + b"<p>Sign in</p>" * 600 + b"</body></html>"


@pytest.mark.parametrize(
    "body, content_type, status, reason",
    [
        (
            JPEG[: len(JPEG) * 2 // 3],
            None,
            "invalid",
            "corrupt JPEG: truncated: no end-of-image marker after the scan data",
        ),
        # The thumbnail's own end marker sits before the scan: the cut stream is still caught.
        (
            with_exif_thumbnail(JPEG, noise_image(16, 16, seed=9))[: len(JPEG) * 2 // 3],
            None,
            "invalid",
            "corrupt JPEG: truncated: no end-of-image marker after the scan data",
        ),
        (JPEG[:300], None, "too_small", "300 bytes is under the 5120-byte minimum"),
        (JPEG[:300], None, "invalid", "corrupt JPEG: truncated: a header segment runs past the end"),  # min_bytes=0
        (HTML, "image/jpeg", "invalid", "not an image (an HTML page)"),
        (JPEG, "text/html; charset=utf-8", "invalid", "not an image (Content-Type text/html)"),
        (png_bomb(), "image/png", "invalid", "decompression bomb: 20000x20000 pixels is over the 50000000-pixel cap"),
        (jpeg_claiming(60_000, 60_000, JPEG), None, "invalid", "decompression bomb: 60000x60000 pixels"),
        (noise_image(8, 8, seed=4), None, "too_small", "bytes is under the 5120-byte minimum"),
        (b"", None, "invalid", "empty body"),
        (PNG[:-12], None, "invalid", "corrupt PNG: truncated: no IEND chunk"),
        (PNG[: len(PNG) // 2], None, "invalid", "corrupt PNG: truncated: chunk 'IDAT' runs past the end"),
        (WEBP[: len(WEBP) // 2], None, "invalid", "corrupt WEBP: truncated: RIFF states"),
        (GIF[:-1], None, "invalid", "corrupt GIF: truncated: no trailer"),
        (b"\x00\x01" * 4000, None, "invalid", "not an image (starts with"),
    ],
)
def test_each_structure_check_rejects_its_case(body, content_type, status, reason):
    limits = ImageLimits(min_bytes=0) if reason.startswith("corrupt JPEG: truncated: a header") else ImageLimits()
    verdict = check_structure(body, limits, content_type)
    assert verdict.status == status and reason in verdict.reason
    assert not verdict.data  # nothing to write


@pytest.mark.parametrize(
    "body, fmt, size",
    [
        (JPEG, "JPEG", (160, 240)),
        (JPEG + b"\x00" * 300, "JPEG", (160, 240)),  # padding after the end marker is fine
        (with_exif_thumbnail(JPEG, noise_image(16, 16, seed=9)), "JPEG", (160, 240)),
        (PNG, "PNG", (100, 150)),
        (WEBP, "WEBP", (100, 150)),
        (GIF + b"\x00" * 10, "GIF", (120, 120)),
    ],
)
def test_sound_images_pass_with_their_header_size(body, fmt, size):
    verdict = check_structure(body)
    assert (verdict.status, verdict.format, (verdict.width, verdict.height)) == ("ok", fmt, size)
    assert verdict.level == "structure" and verdict.data is body


def test_too_large_and_the_limits_are_configurable():
    assert check_structure(JPEG, ImageLimits(max_bytes=1000)).status == "too_large"
    assert check_structure(JPEG, ImageLimits(max_pixels=160 * 240 - 1)).reason.startswith("decompression bomb")
    assert check_structure(noise_image(8, 8, seed=4), ImageLimits(min_bytes=100)).status == "ok"


def test_only_a_decode_finds_corrupt_pixels_and_conversions_decode():
    broken = undecodable_jpeg(JPEG)
    assert check_structure(broken).status == "ok"
    assert verify_body(broken, mode="structure").status == "ok"
    decoded = verify_body(broken, mode="decode")
    assert decoded.status == "invalid" and decoded.reason.startswith("corrupt image:")
    # A JPEG kept as is keeps its bytes; a PNG must be decoded to become a JPEG.
    assert verify_body(JPEG).data is JPEG and verify_body(JPEG).level == "structure"
    png = verify_body(PNG)
    assert png.level == "decoded" and png.data[:3] == b"\xff\xd8\xff" and (png.width, png.height) == (100, 150)
    assert decode_image(JPEG).level == "decoded" and decode_image(JPEG).data is JPEG


# --- the manifest ----------------------------------------------------------------


def manifest_with(folder, ids, **columns):
    rows = pd.DataFrame(
        {
            "id": ids,
            "variant": [1] * len(ids),
            "file_name": [f"{i}.jpg" for i in ids],
            "url": [f"http://x/{i}.jpg" for i in ids],
            "bytes": [len(JPEG)] * len(ids),
            "width": [160] * len(ids),
            "height": [240] * len(ids),
            "format": ["JPEG"] * len(ids),
            "sha256": [f"h{i}" for i in ids],
            "status": ["ok"] * len(ids),
            "reason": [None] * len(ids),
            "verified": ["structure"] * len(ids),
            "decoded_by": [None] * len(ids),
            **columns,
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    for i in ids:
        (folder / f"{i}.jpg").write_bytes(JPEG)
    return merge_into_manifest(folder, rows)


def test_decode_results_mark_rows_decoded_or_invalid(tmp_path):
    manifest_with(tmp_path, [1, 2, 3, 4])
    record = record_decode_results(
        tmp_path, {"1.jpg": None, tmp_path / "2.jpg": "OSError: broken data stream", "9.jpg": None}, CAPTIONING
    )
    assert (record.decoded, record.failed, record.unknown, record.unchanged) == (1, 1, 1, 0)
    again = record_decode_results(tmp_path, [("1.jpg", None), ("2.jpg", None)], CAPTIONING)
    assert (again.decoded, again.failed, again.unchanged) == (0, 0, 2)  # a failure is not undone by a later read

    rows = read_manifest(tmp_path).set_index("id")
    assert (rows.loc[1, "status"], rows.loc[1, "verified"], rows.loc[1, "decoded_by"]) == (
        "ok",
        "decoded",
        "captioning",
    )
    assert rows.loc[2, "status"] == "invalid" and rows.loc[2, "decoded_by"] == "captioning"
    assert rows.loc[2, "reason"] == "does not decode (captioning): OSError: broken data stream"
    assert verification_counts(read_manifest(tmp_path)) == {
        "verified_decoded": 1,
        "verified_structure_only": 2,
        "decode_failures": 1,
    }


def test_a_manifest_from_before_verification_levels_reads_as_decoded(tmp_path):
    old = pa.table(
        {
            "id": [1, 2],
            "variant": [1, 1],
            "file_name": ["1.jpg", "2.jpg"],
            "url": ["u1", "u2"],
            "bytes": [9000, None],
            "width": [10, None],
            "height": [10, None],
            "format": ["JPEG", None],
            "sha256": ["a", None],
            "status": ["ok", "too_small"],
            "reason": [None, "small"],
        }
    )
    pq.write_table(old, ImageFolder(tmp_path).manifest)
    rows = read_manifest(tmp_path).set_index("id")
    assert (rows.loc[1, "verified"], rows.loc[1, "decoded_by"]) == (
        "decoded",
        "download",
    )  # the old download decoded all
    assert pd.isna(rows.loc[2, "verified"])


def test_an_update_waits_for_the_lock_and_loses_nothing(tmp_path):
    """A writer holding the lock (a download merging its rows) adds row 3; the decode
    result recorded meanwhile waits, then applies on top of it: both survive."""
    manifest_with(tmp_path, [1, 2])
    recorded = []
    with manifest_lock(tmp_path):
        writer = threading.Thread(
            target=lambda: recorded.append(record_decode_results(tmp_path, {"1.jpg": "OSError: bad"}, CAPTIONING))
        )
        writer.start()
        writer.join(0.3)
        assert writer.is_alive() and not recorded  # blocked on the lock
        current = read_manifest(tmp_path)
        extra = current.iloc[[0]].assign(id=3, file_name="3.jpg")
        manifest_module._write(tmp_path, pd.concat([current, extra], ignore_index=True))  # as merge does
    writer.join(30)
    rows = read_manifest(tmp_path).set_index("id")
    assert sorted(rows.index) == [1, 2, 3]
    assert rows.loc[1, "status"] == "invalid" and recorded[0].failed == 1


def test_poster_results_by_id_go_to_the_partition_folder_holding_them(tmp_path):
    first, second = tmp_path / "tt0000001-tt0000050", tmp_path / "tt0000051-tt0000100"
    manifest_with(first, [1, 2])
    manifest_with(second, [60])
    (tmp_path / "notes").mkdir()  # not a partition folder: ignored
    record = record_poster_decode_results(tmp_path, {2: "SyntaxError: broken", 60: None, 500: None}, LORA_LATENTS)
    assert (record.decoded, record.failed, record.unknown) == (1, 1, 1)
    assert read_manifest(first).set_index("id").loc[2, "status"] == "invalid"
    assert read_manifest(second).set_index("id").loc[60, "verified"] == "decoded"


def test_the_export_leaves_out_an_image_a_later_decode_rejected(tmp_path):
    folder = tmp_path / "images" / "posters" / "tt0000001-tt0000050"
    manifest_with(folder, [1, 2, 3])
    record_decode_results(folder, {"2.jpg": "OSError: image file is truncated"}, CAPTIONING)
    movies = pd.DataFrame(
        [
            {
                "id": i,
                "title": f"Movie {i}",
                "genres": ["Drama"],
                "actors": {},
                "synopsis": "A story.",
                "poster_url": f"https://m.media-amazon.com/images/M/x{i}._V1_.jpg",
            }
            for i in (1, 2, 3)
        ]
    )
    result = write_export(
        movies, None, [folder], pd.DataFrame(columns=["id", "name", "image_url"]), None, tmp_path / "export"
    )
    assert pd.read_csv(result.files["posters.csv"])["id"].tolist() == [1, 3]
    assert sorted(p.name for p in (tmp_path / "export" / "posters").glob("*.jpg")) == ["1.jpg", "3.jpg"]
    assert result.counts["movies_without_verified_poster"] == 1
