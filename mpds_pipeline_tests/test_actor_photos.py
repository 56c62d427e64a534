"""Faces and actor photos: detection and matching on real bundled portraits, crops, the
selection rules end to end against the sample server, reuse on rerun, and the export."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mpds_pipeline.curate import actor_photos as ap
from mpds_pipeline.curate.actor_photos import ActorPhotoSettings, build_actor_photos
from mpds_pipeline.curate.export_actor_photos import write_actor_photos_export
from mpds_pipeline.curate.face_crops import load_rgb
from mpds_pipeline.curate.faces import (
    Face,
    FaceAnalyzer,
    FaceSettings,
    crop_face,
    face_distance,
    head_and_shoulders_box,
    recognition_model_files,
)
from mpds_pipeline.curate.filters import select_actors
from mpds_pipeline.curate.images import download_actor_images
from mpds_pipeline.imdb.crawl import crawl_partition
from mpds_pipeline.imdb.galleries import crawl_galleries
from mpds_pipeline.imdb.record_store import parse_archive, read_records, write_records
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline.sample_server import SampleImdbServer, sample_person
from mpds_pipeline.sample_server.photos import portrait, render_photo

# Sample persons 1-14: plans 0, 1 and 2 (see sample_server.content), three layouts,
# non-actors (3, 6, 13), a tiny image (5), no image (8), a missing page (9).
PERSON_IDS = range(1, 15)


@pytest.fixture(scope="module")
def analyzer():
    return FaceAnalyzer()


def rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def test_detector_finds_one_face_per_portrait_two_per_pair_none_in_a_scene(analyzer):
    for identity in (0, 1):
        for seed in range(4):
            assert len(analyzer.faces(rgb(render_photo("self", identity, f"t{seed}")))) == 1
        assert len(analyzer.faces(rgb(render_photo("pair", identity, "pair")))) == 2
    for seed in ("a", "b", "c", "d"):
        assert analyzer.faces(rgb(render_photo("scene", 0, seed))) == []


def test_recognition_model_tells_the_two_real_faces_apart(analyzer):
    assert recognition_model_files() is not None and analyzer.can_match
    images = {(i, s): rgb(portrait(i, random.Random(s))) for i in (0, 1) for s in (1, 2)}
    descriptors = {key: analyzer.descriptor(image, analyzer.faces(image)[0]) for key, image in images.items()}
    assert face_distance(descriptors[0, 1], descriptors[0, 2]) < 0.6
    assert face_distance(descriptors[1, 1], descriptors[1, 2]) < 0.6
    assert face_distance(descriptors[0, 1], descriptors[1, 1]) > 0.6


def test_matching_can_be_switched_off():
    off = FaceAnalyzer(FaceSettings(match_faces=False))
    assert not off.can_match and off.matching_off_reason == "match_faces is off"
    image = rgb(portrait(0, random.Random(0)))
    assert off.descriptor(image, off.faces(image)[0]) is None


def test_without_the_recognition_package_matching_is_off_and_says_so(monkeypatch):
    import mpds_pipeline.curate.faces as faces

    monkeypatch.setattr(faces, "recognition_model_files", lambda: None)
    analyzer = FaceAnalyzer()
    assert not analyzer.can_match and analyzer.matching_off_reason == "face-recognition-models is not installed"
    assert ap.matching_state(FaceSettings()) == "off (face-recognition-models is not installed)"
    assert len(analyzer.faces(rgb(portrait(1, random.Random(3))))) == 1  # detection needs no model file


def test_head_and_shoulders_box_is_a_square_inside_the_image():
    settings = FaceSettings(margin=0.8)
    box = head_and_shoulders_box(Face((100, 100, 200, 200), 1.0), 1000, 800, settings)
    assert box[2] - box[0] == box[3] - box[1] == 260  # 100 px face x (1 + 2 x 0.8)
    assert box[0] < 100 and box[2] > 200 and (box[1] + box[3]) / 2 > 150  # centred below the face
    edge = head_and_shoulders_box(Face((0, 0, 300, 300), 1.0), 400, 350, settings)
    assert edge == (0, 0, 350, 350)  # moved and shrunk into the image, never cut
    assert crop_face(Image.new("RGB", (400, 350)), edge, 512).size == (512, 512)


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("actor_photos")
    with SampleImdbServer() as server:
        settings = ClientSettings(base_url=server.base_url, rate_per_second=0, concurrency=4, timeout_s=5.0)
        crawl_partition("person", PERSON_IDS, settings, root / "pages")
        crawl_galleries(root / "pages", settings)
        write_records(parse_archive(root / "pages", "person").records, "person", root / "records" / "p.parquet")
        persons = read_records(root / "records", "person")
        actors = select_actors(persons, pd.DataFrame(columns=["id", "actors"])).actors
        download_actor_images(actors, root / "primary", settings)
        dirs = (root / "primary", root / "photos", root / "crops")
        result, download = build_actor_photos(actors, persons, *dirs, settings, workers=1)
        requests = server.request_count("/images/")
    return {
        "root": root,
        "result": result,
        "download": download,
        "actors": actors,
        "persons": persons,
        "dirs": dirs,
        "settings": settings,
        "image_requests": requests,
    }


def decisions_of(result, actor_id: int) -> list[tuple[str, str]]:
    rows = result.decisions[result.decisions["actor_id"] == actor_id]
    return sorted(zip(rows["source"], rows["decision"]))


def test_every_actor_with_a_face_gets_three_to_five_crops(photos_run):
    result = photos_run["result"]
    per_actor = result.photos_per_actor()
    with_faces = [i for i in PERSON_IDS if sample_person(i).get("photos")]
    assert with_faces and all(3 <= per_actor[i] <= 5 for i in with_faces)
    assert per_actor.get(5, 0) == 0  # its only image is under 5 KB: nothing to crop
    assert result.metadata()["face_matching"] == "on"
    for row in result.photos.to_dict("records"):
        with Image.open(row["path"]) as crop:
            assert crop.size == (512, 512)
        x0, y0, x1, y1 = row["crop_box"]
        assert x1 - x0 == y1 - y0 and min(x0, y0) >= 0 and x1 <= row["width"] and y1 <= row["height"]


def test_each_rule_drops_what_it_should(photos_run):
    result = photos_run["result"]
    # Plan 1: a group caption (not downloaded), an uncaptioned pair, a faceless event photo.
    assert decisions_of(result, 1) == sorted(
        [
            ("primary", "kept"),
            ("strip", "kept"),
            ("strip", "kept"),
            ("strip", "kept"),
            ("strip", "several_faces"),
            ("strip", "no_face"),
            ("strip", "names_others"),
        ]
    )
    # Plan 2: the gallery photo captioned as the actor but showing the other face.
    assert decisions_of(result, 2) == sorted(
        [
            ("primary", "kept"),
            ("strip", "kept"),
            ("gallery", "kept"),
            ("gallery", "kept"),
            ("gallery", "face_mismatch"),
            ("strip", "names_others"),
            ("gallery", "names_others"),
        ]
    )
    mismatch = result.decisions[(result.decisions["actor_id"] == 2) & (result.decisions["decision"] == "face_mismatch")]
    assert mismatch["caption"].iloc[0].startswith(sample_person(2)["name"])  # the caption alone would keep it
    # Only candidates are downloaded: the group photos never are.
    downloaded = set(photos_run["download"].manifest["url"])
    assert not downloaded & set(result.decisions.loc[result.decisions["decision"] == "names_others", "url"])


def test_without_matching_the_mismatched_photo_is_kept(photos_run, tmp_path):
    dirs = (photos_run["dirs"][0], photos_run["dirs"][1], tmp_path / "crops")
    settings = ActorPhotoSettings(faces=FaceSettings(match_faces=False))
    only_two = photos_run["actors"][photos_run["actors"]["id"] == 2]
    result, _ = build_actor_photos(only_two, photos_run["persons"], *dirs, photos_run["settings"], settings, workers=1)
    assert "face_mismatch" not in set(result.decisions["decision"]) and result.photos_per_actor()[2] == 5
    assert result.metadata()["face_matching"] == "off (match_faces is off)"


def test_rerun_reuses_unchanged_actors_without_decoding(photos_run, monkeypatch):
    first = photos_run["result"]
    assert not first.photos.empty

    def no_decoding(*args, **kwargs):
        raise AssertionError("an unchanged actor was decoded again")

    monkeypatch.setattr(ap, "crop_actor", no_decoding)
    again, download = build_actor_photos(
        photos_run["actors"],
        photos_run["persons"],
        *photos_run["dirs"],
        photos_run["settings"],
        previous=(first.photos, first.decisions),
        workers=1,
    )
    assert download.fetched == 0
    pd.testing.assert_frame_equal(again.photos, first.photos)
    assert again.metadata() == first.metadata()


def test_an_undecodable_photo_is_dropped_with_its_reason(photos_run, tmp_path):
    primary, photos_dir, _ = photos_run["dirs"]
    plan = ap.plan_actor_photos(photos_run["actors"][photos_run["actors"]["id"] == 4], photos_run["persons"])
    ap.attach_files(plan, ap_manifest(primary), primary, ap_manifest(photos_dir), photos_dir)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(plan.candidates[4][1].path.read_bytes()[:3000])  # a truncated JPEG
    plan.candidates[4][1].path = broken
    result = ap.crop_actor_photos(plan, tmp_path / "crops", workers=1)
    (row,) = result.decisions[result.decisions["decision"] == "undecodable"].to_dict("records")
    assert row["variant"] == 2 and "truncated" in row["detail"].lower() and str(broken) in result.decode_failures


def test_decoded_photos_are_reported_to_their_download_manifest(photos_run, tmp_path):
    """Like captioning: each photo the face step decodes raises its manifest row to
    "decoded" (stage face_crops), and one that does not decode turns the row invalid, in
    the folder it was downloaded to (actor_images' primaries, or this step's photos)."""
    primary, photos_dir = (Path(shutil.copytree(d, tmp_path / d.name)) for d in photos_run["dirs"][:2])
    plan = ap.plan_actor_photos(photos_run["actors"][photos_run["actors"]["id"] == 4], photos_run["persons"])
    ap.attach_files(plan, ap_manifest(primary), primary, ap_manifest(photos_dir), photos_dir)
    victim = plan.candidates[4][1].path
    assert (
        victim.parent == photos_dir
        and ap_manifest(photos_dir).set_index("file_name").loc[victim.name, "status"] == "ok"
    )
    victim.write_bytes(victim.read_bytes()[:3000])  # truncated after the download verified it

    result = ap.crop_actor_photos(plan, tmp_path / "crops", workers=1)

    row = ap_manifest(photos_dir).set_index("file_name").loc[victim.name]
    assert row["status"] == "invalid" and row["decoded_by"] == "face_crops"
    assert row["reason"].startswith("does not decode (face_crops): ") and "truncated" in row["reason"].lower()
    assert list(result.decode_failures) == [str(victim)] and result.manifest_updates.failed == 1
    # The photos that decoded are "decoded" in their manifests (the fixture's own run set
    # them already in the folders copied here: unchanged now).
    decoded = [c.path for c in plan.candidates[4] if c.path is not None and c.path != victim]
    assert decoded and result.manifest_updates.decoded + result.manifest_updates.unchanged == len(decoded)
    for path in decoded:
        row = ap_manifest(path.parent).set_index("file_name").loc[path.name]
        assert (row["status"], row["verified"], row["decoded_by"]) == ("ok", "decoded", "face_crops")
    # A second run decodes nothing new and changes nothing.
    again = ap.crop_actor_photos(plan, tmp_path / "crops2", workers=1)
    assert (again.manifest_updates.decoded, again.manifest_updates.failed) == (0, 0)


def ap_manifest(folder):
    from mpds_pipeline.curate.manifest import read_manifest

    return read_manifest(folder)


def test_worker_processes_give_the_same_crops(photos_run, tmp_path):
    dirs = (photos_run["dirs"][0], photos_run["dirs"][1], tmp_path / "crops")
    some = photos_run["actors"][photos_run["actors"]["id"].isin([1, 2])]
    parallel, _ = build_actor_photos(some, photos_run["persons"], *dirs, photos_run["settings"], workers=2)
    serial = photos_run["result"].photos
    serial = serial[serial["actor_id"].isin([1, 2])].reset_index(drop=True)
    assert list(parallel.photos["sha256"]) == list(serial["sha256"]) and len(serial) > 0


def test_export_lists_the_crops_of_exported_actors(photos_run, tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    pd.DataFrame({"id": [1, 2]}).to_csv(export / "actors.csv", index=False)
    counts = write_actor_photos_export(photos_run["result"].photos, export)
    table = pd.read_csv(export / "actor_photos.csv")
    assert counts == {"actor_photo_rows": len(table), "actors_with_photos": 2}
    assert set(table["actor_id"]) == {1, 2} and set(table["source"]) == {"primary", "strip", "gallery"}
    assert all((export / name).is_file() for name in table["file_name"])
    parquet = pd.read_parquet(export / "actor_photos.parquet")
    assert list(parquet["crop_box"].iloc[0]) == [int(v) for v in table["crop_box"].iloc[0].strip("[]").split(",")]


def test_a_photo_stored_sideways_with_an_exif_orientation_is_read_upright(analyzer, tmp_path):
    sideways = portrait(0, random.Random(1)).rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    sideways.save(tmp_path / "side.jpg", exif=exif.tobytes())
    with Image.open(tmp_path / "side.jpg") as raw:
        assert analyzer.faces(rgb(raw)) == []  # as stored, the face lies on its side
    assert len(analyzer.faces(load_rgb(tmp_path / "side.jpg"))) == 1
