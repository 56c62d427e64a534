"""One Literal per vocabulary: the config classes offer its words as choices in the
launchpad, Dagster refuses any other word before a run starts, and the named constants
the core compares with are exactly the Literal's words."""

from __future__ import annotations

from typing import get_args

import pytest
from dagster import DagsterInvalidConfigError, materialize

from mpds_pipeline.curate import face_crops, image_checks
from mpds_pipeline.curate.filters import ADULT_REASONS, DROP_REASONS, MovieDropReason
from mpds_pipeline.curate.rehydrate import MovieSource
from mpds_pipeline.defs.assets.curation import ImagesConfig, MoviesConfig, movies
from mpds_pipeline.defs.assets.generation import ActorEmbeddingsConfig, BenchmarkImagesConfig, BenchmarkReportConfig
from mpds_pipeline.defs.resources import DataDirResource, ImdbClientResource
from mpds_pipeline.imdb import archive, person_photos, records
from mpds_pipeline.imdb.classify import classify_response
from mpds_pipeline.net.client import FetchResponse
from mpds_pipeline.vision.choices import AttentionSetting
from mpds_pipeline.vision.metrics.fid import ResizeMethod
from mpds_pipeline.vision.textual_inversion import TooFewImages


def choices(config_class, field: str) -> list[str]:
    """The words Dagster's config schema (what the launchpad shows) offers for a field."""
    config_type = config_class.to_config_schema().as_field().config_type.fields[field].config_type
    return [value.config_value for value in config_type.enum_values]


@pytest.mark.parametrize(
    "config_class, field, vocabulary",
    [
        (MoviesConfig, "source", MovieSource),
        (ImagesConfig, "verify", image_checks.VerifyMode),
        (ImdbClientResource, "archive_mode", archive.ArchiveMode),
        (ActorEmbeddingsConfig, "too_few_images", TooFewImages),
        (BenchmarkImagesConfig, "localized_attention", AttentionSetting),
        (BenchmarkReportConfig, "fid_resize_method", ResizeMethod),
    ],
)
def test_config_fields_offer_the_vocabulary_as_choices(config_class, field, vocabulary):
    assert choices(config_class, field) == list(get_args(vocabulary))


def test_a_word_outside_the_vocabulary_is_refused_before_the_run(tmp_path):
    with pytest.raises(DagsterInvalidConfigError, match="source"):
        materialize(
            [movies],
            resources={"data_dir": DataDirResource(path=str(tmp_path))},
            run_config={"ops": {"movies": {"config": {"source": "scrape"}}}},
        )
    assert not any(tmp_path.iterdir())  # nothing ran


@pytest.mark.parametrize(
    "vocabulary, constants",
    [
        (
            image_checks.ImageStatus,
            ["OK", "TOO_SMALL", "TOO_LARGE", "INVALID", "HTTP_ERROR", "REFUSED", "FAILED", "BLOCKED", "OPTED_OUT"],
        ),
        (image_checks.VerificationLevel, ["STRUCTURE", "DECODED"]),
        (image_checks.DecodeStage, ["DOWNLOAD_STAGE", "CAPTIONING", "LORA_LATENTS", "FACE_CROPS"]),
        (person_photos.PhotoSubject, ["ALONE", "WITH_OTHERS", "NOT_NAMED", "UNCAPTIONED"]),
        (records.PhotoSource, ["STRIP", "GALLERY"]),
    ],
)
def test_named_constants_are_the_vocabulary(vocabulary, constants):
    module = {
        image_checks.ImageStatus: image_checks,
        image_checks.VerificationLevel: image_checks,
        image_checks.DecodeStage: image_checks,
        person_photos.PhotoSubject: person_photos,
        records.PhotoSource: records,
    }[vocabulary]
    assert sorted(getattr(module, name) for name in constants) == sorted(get_args(vocabulary))


def test_actor_photo_decisions_are_kept_or_a_drop_reason():
    named = {getattr(face_crops, n) for n in dir(face_crops) if n.isupper() and isinstance(getattr(face_crops, n), str)}
    assert set(get_args(face_crops.PhotoDecision)) == {"kept", *face_crops.DROP_REASONS}
    assert set(face_crops.DROP_REASONS) <= named  # each reason has its constant
    assert get_args(face_crops.CandidateSource) == ("primary", "strip", "gallery")


def test_movie_drop_reasons_and_the_adult_ones():
    assert DROP_REASONS == get_args(MovieDropReason)
    assert set(ADULT_REASONS) <= set(DROP_REASONS)


def test_every_classified_status_is_a_fetch_status():
    cases = [
        FetchResponse("u", 200, {}, b"<h1>x</h1>", "u", 1),
        FetchResponse("u", 404, {}, b"", "u", 1),
        FetchResponse("u", 301, {"location": "/title/tt0000002/"}, b"", "u", 1),
        FetchResponse("u", 202, {}, b"", "u", 1),
        FetchResponse("u", 500, {}, b"", "u", 1, "HTTP 500"),
    ]
    statuses = [classify_response("title", 1, resp)[0] for resp in cases]
    # "uncaptured" is no live answer: the archive sources give it to an id no capture holds.
    assert [*statuses, records.UNCAPTURED] == list(records.FETCH_STATUSES)
    assert records.FINAL_STATUSES < set(records.FETCH_STATUSES)
