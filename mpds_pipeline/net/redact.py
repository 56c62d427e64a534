"""Secrets out of URLs and messages: an API key in a query string (OMDb's ``apikey``)
must never reach a log line, an archive, metadata or an error message.

The client redacts every URL it reports; a source that builds a URL with a key logs or
stores only ``redact_url(url)``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_QUERY_KEYS = frozenset({"apikey", "api_key", "key", "token", "access_token", "auth", "password"})
REDACTED = "REDACTED"
_SECRET_IN_TEXT = re.compile(
    r"(?i)\b(" + "|".join(sorted(SECRET_QUERY_KEYS, key=len, reverse=True)) + r")=([^&\s'\"<>]+)"
)


def redact_url(url: str) -> str:
    """``url`` with the value of every secret query parameter replaced by REDACTED."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name.lower() in SECRET_QUERY_KEYS for name, _ in pairs):
        return url
    query = urlencode([(n, REDACTED if n.lower() in SECRET_QUERY_KEYS else v) for n, v in pairs], safe=":/")
    return urlunsplit(parts._replace(query=query))


def redact_text(text: str) -> str:
    """Any ``key=value`` of a secret parameter inside free text (an exception's message)."""
    return _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
