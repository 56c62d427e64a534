"""IMDb's image hosts over the years: an archived page links its pictures where IMDb
served them then (``ia.media-imdb.com`` in 2008-2016, ``images-na.ssl-images-amazon.com``
later); the image key (``/images/M/MV5B…``) names the same picture on today's host."""

from __future__ import annotations

from urllib.parse import urlsplit

CURRENT_IMAGE_HOST = "m.media-amazon.com"
OLD_IMAGE_HOSTS = frozenset({"ia.media-imdb.com", "images-na.ssl-images-amazon.com", "images.media-imdb.com"})


def current_image_url(url: str | None) -> str | None:
    """``url`` on today's image host when it is an IMDb picture on an older one; any
    other URL (today's host, a stand-in server, a placeholder) unchanged."""
    if not url:
        return url
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in OLD_IMAGE_HOSTS or not parts.path.startswith("/images/M/"):
        return url
    return parts._replace(scheme="https", netloc=CURRENT_IMAGE_HOST).geturl()


def modernise_image_urls(record) -> None:
    """Move a parsed record's image URLs (poster, person image, photos) to today's host."""
    if hasattr(record, "poster_url"):
        record.poster_url = current_image_url(record.poster_url)
    if hasattr(record, "image_url"):
        record.image_url = current_image_url(record.image_url)
    for photo in getattr(record, "photos", None) or []:
        photo.url = current_image_url(photo.url)
