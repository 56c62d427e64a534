"""Paused hosts: recorded by a blocked or out-of-quota run, read by the automation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mpds_pipeline.sources.pauses import active_pause, active_pauses, clear_pause, next_utc_day, pause_host

NOW = datetime(2026, 12, 7, 10, 30, tzinfo=timezone.utc)


def test_a_pause_holds_until_its_date_and_names_host_and_date(tmp_path):
    path = tmp_path / "automation" / "paused_hosts.json"
    pause = pause_host(path, "WWW.IMDB.COM", "AWS WAF challenge on 5 pages in a row", now=NOW)
    assert pause.until_time == NOW + timedelta(days=7)
    assert active_pause(path, "www.imdb.com", now=NOW + timedelta(days=6)) == pause
    assert active_pause(path, "www.imdb.com", now=NOW + timedelta(days=7, seconds=1)) is None
    assert (
        pause.describe() == "www.imdb.com is paused until 2026-12-14 10:30 UTC: AWS WAF challenge on 5 pages in a row"
    )
    assert active_pause(path, "www.omdbapi.com", now=NOW) is None


def test_a_daily_quota_pauses_until_the_next_utc_day_and_clearing_ends_it(tmp_path):
    path = tmp_path / "paused.json"
    pause_host(path, "www.omdbapi.com", "Request limit reached!", until=next_utc_day(NOW), now=NOW)
    pause_host(path, "www.imdb.com", "blocked", days=1, now=NOW)
    assert sorted(p.host for p in active_pauses(path, now=NOW)) == ["www.imdb.com", "www.omdbapi.com"]
    assert active_pause(path, "www.omdbapi.com", now=NOW).until == "2026-12-08T00:00:00+00:00"
    clear_pause(path, "www.omdbapi.com")
    assert [p.host for p in active_pauses(path, now=NOW)] == ["www.imdb.com"]


def test_a_damaged_pause_file_is_a_clear_error(tmp_path):
    path = tmp_path / "paused.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a pause file"):
        active_pause(path, "www.imdb.com")
