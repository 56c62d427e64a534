"""Progress lines: cadence, figures and the final line, on a fake clock."""

from mpds_pipeline.base.progress import Progress, format_duration, format_rate


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_first_update_logs_then_every_interval_then_final_line():
    clock, lines = FakeClock(), []
    with Progress("title_pages tt1-tt10", 10, lines.append, unit="ids", every_s=30, clock=clock) as progress:
        clock.now += 1
        progress.update(status="ok")
        assert len(lines) == 1
        for _ in range(3):
            clock.now += 10
            progress.update(status="ok")
        assert len(lines) == 2  # 30 s after the first line
        clock.now += 5
        progress.update(2, status="missing")
        assert len(lines) == 2
    assert len(lines) == 3
    assert lines[1] == "title_pages tt1-tt10: 4/10 ids (40.0%), 0.13 ids/s, ETA 46s; ok 4"
    assert lines[-1].startswith("title_pages tt1-tt10: 6/10 ids (60.0%)")
    assert "done in 36s" in lines[-1] and "ok 4, missing 2" in lines[-1]


def test_every_n_and_values():
    clock, lines = FakeClock(), []
    progress = Progress("lora", 100, lines.append, unit="steps", every_s=1e9, every_n=25, clock=clock)
    for step in range(1, 101):
        clock.now += 0.5
        progress.update(loss=1.0 / step)
    assert [line.split(":")[1].split(",")[0].strip() for line in lines] == [
        "1/100 steps (1.0%)",
        "26/100 steps (26.0%)",
        "51/100 steps (51.0%)",
        "76/100 steps (76.0%)",
    ]
    assert lines[1].endswith("loss 0.03846")
    progress.close()
    progress.close()
    assert len(lines) == 5 and "done in 50s" in lines[-1]


def test_unknown_total_has_no_eta():
    clock, lines = FakeClock(), []
    progress = Progress("captions", None, lines.append, unit="posters", clock=clock)
    clock.now += 2
    progress.update(4)
    assert lines == ["captions: 4 posters, 2.00 posters/s"]


def test_formatting():
    assert [format_duration(s) for s in (45, 150, 8760, 200000)] == ["45s", "2m30s", "2h26m", "2d7h"]
    assert format_rate(612.3, "pages") == "612 pages/s"
    assert format_rate(0.05, "steps") == "3.00 steps/min"


def test_a_step_that_fails_ends_with_stopped_after():
    clock, lines = FakeClock(), []
    try:
        with Progress("imdb_index: converting", None, lines.append, unit="rows", clock=clock) as progress:
            progress.update(10)
            clock.now += 5
            raise ValueError("bad file")
    except ValueError:
        pass
    assert lines[-1] == "imdb_index: converting: 10 rows, 2.00 rows/s, stopped after 5s"
