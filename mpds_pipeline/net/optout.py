"""AI opt-out signals of an image's rights holder: ``X-Robots-Tag`` and TDMRep.

Read on every image download unless a research setting turns it off; a signal found
makes the download refuse the image with the drop reason ``opted_out:<signal>``. Which
signals and how they are read: docs/licence-clean.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

# The user-agent tokens an addressed X-Robots-Tag must name to apply to us (lower case).
AGENT_TOKENS: Final = ("mpds-pipeline",)
NOAI: Final = "noai"
NOIMAGEAI: Final = "noimageai"
TDM_RESERVATION: Final = "tdm-reservation"
OPTOUT_SIGNALS: Final = (NOAI, NOIMAGEAI, TDM_RESERVATION)
OPTED_OUT_PREFIX: Final = "opted_out:"
TDMREP_PATH: Final = "/.well-known/tdmrep.json"
TDMREP_MAX_BYTES: Final = 500_000
# X-Robots-Tag directives that carry a value after a colon: their name is no user agent.
_VALUED_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
_AGENT_RE = re.compile(r"^([A-Za-z0-9_.\-*]+)\s*:\s*(.*)$")


def opted_out_reason(signal: str) -> str:
    """The manifest's drop reason for an image refused because of ``signal``."""
    return f"{OPTED_OUT_PREFIX}{signal}"


def robots_tag_signals(value: str | None, agents: Iterable[str] = AGENT_TOKENS) -> list[str]:
    """The AI opt-out directives (``noai``, ``noimageai``) in an X-Robots-Tag value that
    apply to us: unaddressed ones, and those addressed to one of ``agents``."""
    if not value:
        return []
    ours = {a.lower() for a in agents}
    found: list[str] = []
    addressed: str | None = None  # the agent the directives now being read are for; None: everyone
    for part in value.split(","):
        token = part.strip()
        match = _AGENT_RE.match(token)
        if match and match.group(1).lower() not in _VALUED_DIRECTIVES:
            addressed, token = match.group(1).lower(), match.group(2).strip()
        directive = token.lower()
        applies = addressed is None or addressed in ours
        if directive in (NOAI, NOIMAGEAI) and applies and directive not in found:
            found.append(directive)
    return found


def header_tdm_reservation(headers: Mapping[str, str]) -> bool | None:
    """The ``tdm-reservation`` response header: True (1), False (0), None (absent/unreadable)."""
    value = (headers.get("tdm-reservation") or "").split(",")[0].strip()
    return {"1": True, "0": False}.get(value)


@dataclass(frozen=True)
class TdmRule:
    location: str  # a path pattern: '*' any characters, a final '$' anchors the end
    reserved: bool
    policy: str | None = None

    def matches(self, path: str) -> bool:
        pattern = self.location or "/"
        anchored = pattern.endswith("$")
        regex = ".*".join(re.escape(piece) for piece in pattern.rstrip("$").split("*"))
        return re.match(regex + ("$" if anchored else ""), path) is not None


def parse_tdmrep(body: bytes) -> list[TdmRule]:
    """The rules of a tdmrep.json (a JSON array of ``location``/``tdm-reservation``/
    ``tdm-policy`` objects); anything unreadable is no rules (no reservation stated)."""
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return []
    rules = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or "location" not in item:
            continue
        reserved = str(item.get("tdm-reservation", "0")).strip() == "1"
        policy = item.get("tdm-policy")
        rules.append(TdmRule(str(item["location"]), reserved, str(policy) if policy else None))
    return rules


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass
class OptOutPolicy:
    """Whether opt-outs are honoured, for which agent tokens, and each origin's TDMRep
    rules as read at the start of the run (plain data: it travels to download workers)."""

    enabled: bool = True
    agents: tuple[str, ...] = AGENT_TOKENS
    tdmrep: dict[str, list[TdmRule]] = field(default_factory=dict)  # origin -> rules ([] none/unreadable)

    def __post_init__(self):
        self.agents = tuple(self.agents)
        self.tdmrep = {
            origin: [rule if isinstance(rule, TdmRule) else TdmRule(**rule) for rule in rules]
            for origin, rules in self.tdmrep.items()
        }

    def signal(self, url: str, headers: Mapping[str, str]) -> str | None:
        """The opt-out signal that refuses the image at ``url`` answered with ``headers``,
        or None. Per-response signals first; the origin's tdmrep.json last."""
        if not self.enabled:
            return None
        found = robots_tag_signals(headers.get("x-robots-tag"), self.agents)
        if found:
            return found[0]
        header = header_tdm_reservation(headers)
        if header is not None:
            return TDM_RESERVATION if header else None
        path = urlsplit(url).path or "/"
        for rule in self.tdmrep.get(origin_of(url), []):
            if rule.matches(path):
                return TDM_RESERVATION if rule.reserved else None
        return None


async def read_tdmrep(client, origins: Iterable[str], log=None) -> dict[str, list[TdmRule]]:
    """Each origin's ``/.well-known/tdmrep.json`` rules, one request per origin through
    ``client`` (a PoliteClient: rate, robots and allowlist apply). No file (404), an
    error or a host we may not ask: no rules."""
    from .client import HostNotAllowed, RobotsDisallowed

    rules: dict[str, list[TdmRule]] = {}
    for origin in sorted(set(origins)):
        try:
            resp = await client.fetch(origin + TDMREP_PATH, max_bytes=TDMREP_MAX_BYTES)
        except (HostNotAllowed, RobotsDisallowed):
            rules[origin] = []
            continue
        rules[origin] = parse_tdmrep(resp.content) if resp.status_code == 200 and not resp.too_large else []
        if log is not None and any(r.reserved for r in rules[origin]):
            log(f"{origin} reserves TDM rights (tdmrep.json) for {sum(r.reserved for r in rules[origin])} location(s)")
    return rules
