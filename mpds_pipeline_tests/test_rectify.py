"""Rectifications: CSV and Label Studio files, validation, latest wins, audit, saves."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pandas as pd

from mpds_pipeline.curate.prompts import build_poster_prompts
from mpds_pipeline.curate.rectify import load_rectifications, save_correction

KNOWN = {1, 2, 3, 133093}
BLIP = {1: "a poster of noise", 2: "a poster of static", 3: "a poster of snow", 133093: "a poster of a man"}


def write(folder: Path, name: str, text: str, mtime: float | None = None) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def label_studio_export() -> list[dict]:
    """The shape of Label Studio's JSON export (trimmed to the fields that matter)."""
    return [
        {
            "id": 7,
            "data": {"image": "/data/local-files/?d=posters/tt0-tt9/2.jpg", "id": 2},
            "annotations": [
                {
                    "id": 11,
                    "completed_by": {"id": 1, "email": "ana@example.org"},
                    "result": [
                        {
                            "from_name": "caption",
                            "to_name": "image",
                            "type": "textarea",
                            "value": {"text": ["a poster of a woman", "on a horse"]},
                        }
                    ],
                    "was_cancelled": False,
                    "created_at": "2026-01-02T10:00:00.000000Z",
                    "updated_at": "2026-01-02T10:05:00.000000Z",
                }
            ],
        },
        {  # no id key: the id comes from the image file name
            "id": 8,
            "data": {"image": "s3://bucket/posters/133093.jpg"},
            "annotations": [
                {
                    "completed_by": 3,
                    "result": [{"type": "textarea", "value": {"text": ["Neo dodging bullets"]}}],
                    "created_at": "2026-01-03T09:00:00Z",
                }
            ],
        },
        {  # cancelled annotation: nothing to take
            "id": 9,
            "data": {"id": 3, "image": "3.jpg"},
            "annotations": [{"was_cancelled": True, "result": []}],
        },
    ]


def test_csv_and_label_studio_override_captions(tmp_path):
    write(
        tmp_path,
        "batch1.csv",
        "id,text,reviewer,note\n1,a poster of a red car,bob,fixed colour\ntt0000003,a snowy road,bob,\n",
    )
    write(tmp_path, "export.json", json.dumps(label_studio_export()))
    write(tmp_path, "README.md", "not a correction file")
    result = load_rectifications(tmp_path, KNOWN, BLIP)
    assert result.corrections == {
        1: "a poster of a red car",
        3: "a snowy road",
        2: "a poster of a woman on a horse",
        133093: "Neo dodging bullets",
    }
    accepted = result.accepted.set_index("id")
    assert accepted.loc[2, "reviewer"] == "ana@example.org"
    assert accepted.loc[1, "note"] == "fixed colour"
    assert str(accepted.loc[2, "created_at"]) == "2026-01-02 10:05:00+00:00"  # updated_at wins
    assert len(result.rejected) == 1 and result.rejected.iloc[0]["reason"] == "no textarea annotation"

    movies = pd.DataFrame(
        {"id": [1, 2], "title": ["A", "B"], "genres": [[], []], "actors": [[], []], "synopsis": ["", ""]}
    )
    vision = pd.DataFrame({"id": [1, 2], "caption": [BLIP[1], BLIP[2]]})
    prompts = build_poster_prompts(movies, vision, result.corrections).set_index("id")
    assert prompts.loc[1, "vision_prompt"] == "a poster of a red car"
    assert prompts.loc[2, "text"] == "a poster of a woman on a horse. B."
    assert set(prompts["vision_source"]) == {"rectified"}


def test_bad_rows_are_rejected_with_reasons(tmp_path):
    write(
        tmp_path,
        "mixed.csv",
        "id,text,reviewer\n"
        "1,good text,bob\n"
        "999999,text for an unknown id,bob\n"
        "2,   ,bob\n"
        "abc,text with a bad id,bob\n"
        ",text without id,bob\n"
        "3,too,many,cells,here\n"
        "133093,fine,bob\n",
    )
    write(tmp_path, "nocols.csv", "movie,caption\n1,x\n")
    write(tmp_path, "broken.json", "[{not json")
    result = load_rectifications(tmp_path, KNOWN, BLIP)
    assert result.corrections == {1: "good text", 133093: "fine"}
    reasons = {(r.source, None if pd.isna(r.row) else int(r.row)): r.reason for r in result.rejected.itertuples()}
    assert reasons[("mixed.csv", 2)] == "unknown id"
    assert reasons[("mixed.csv", 3)] == "empty text"
    assert reasons[("mixed.csv", 4)] == "bad id"
    assert reasons[("mixed.csv", 5)] == "missing id"
    assert reasons[("mixed.csv", 6)].startswith("malformed row")
    assert reasons[("nocols.csv", None)].startswith("malformed file: missing column(s) id, text")
    assert reasons[("broken.json", None)].startswith("malformed file")
    assert result.metadata()["rejected"] == 7
    assert result.metadata()["rejection_reasons"]["unknown id"] == 1


def test_latest_wins_and_audit_keeps_every_correction(tmp_path):
    write(tmp_path, "b-old.csv", "id,text,reviewer\n1,first fix,ann\n2,only fix,ann\n", mtime=1_700_000_000)
    write(tmp_path, "a-new.csv", "id,text,reviewer\n1,second fix,bob\n", mtime=1_700_000_100)
    # An explicit created_at beats file times: this row is the oldest despite its new file.
    write(tmp_path, "c.csv", "id,text,reviewer,created_at\n1,ancient fix,cy,2020-01-01T00:00:00\n", mtime=1_800_000_000)
    result = load_rectifications(tmp_path, KNOWN, BLIP)
    assert result.corrections[1] == "second fix"
    audit = result.audit[result.audit["id"] == 1]
    assert list(audit["text"]) == ["ancient fix", "first fix", "second fix"]
    assert list(audit["replaced_text"]) == [BLIP[1], "ancient fix", "first fix"]
    assert list(audit["reviewer"]) == ["cy", "ann", "bob"]
    assert list(audit["source"]) == ["c.csv", "b-old.csv", "a-new.csv"]
    assert len(result.accepted) == 2


def test_save_correction_writes_and_detects_conflicts(tmp_path):
    folder = tmp_path / "rectifications"
    first = save_correction(folder, 1, "a red car", "ann", replaced_text=BLIP[1], expected_previous=None)
    assert first.saved and not first.conflict and first.path.exists()
    assert not list(folder.glob(".*.part"))

    # Bob loaded the page before Ann saved: he still expects no correction.
    stale = save_correction(folder, 1, "a blue car", "bob", replaced_text=BLIP[1], expected_previous=None)
    assert stale.conflict and not stale.saved and stale.path is None
    assert stale.current_text == "a red car" and stale.current_reviewer == "ann"

    # After reloading he sees Ann's text and may replace it.
    second = save_correction(folder, 1, "a blue car", "bob", replaced_text="a red car", expected_previous="a red car")
    assert second.saved
    result = load_rectifications(folder, KNOWN, BLIP)
    assert result.corrections == {1: "a blue car"}
    assert list(result.audit["replaced_text"]) == [BLIP[1], "a red car"]
    assert list(result.audit["reviewer"]) == ["ann", "bob"]


def test_concurrent_saves_of_one_id_let_exactly_one_win(tmp_path):
    outcomes = []
    start = threading.Barrier(4)

    def reviewer(name: str) -> None:
        start.wait()
        outcomes.append(save_correction(tmp_path, 2, f"text by {name}", name, BLIP[2], expected_previous=None))

    threads = [threading.Thread(target=reviewer, args=(f"r{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    saved = [o for o in outcomes if o.saved]
    assert len(saved) == 1 and sum(o.conflict for o in outcomes) == 3
    winner = load_rectifications(tmp_path, KNOWN, BLIP).corrections[2]
    assert all(o.current_text == winner for o in outcomes if o.conflict)
