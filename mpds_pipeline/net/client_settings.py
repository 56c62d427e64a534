"""What the polite client is told: the settings of every request and each host's policy."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from ..base.settings import setting

PRODUCT = "MPDS-pipeline/0.2"
DEFAULT_USER_AGENT = (
    f"{PRODUCT} (non-commercial research crawler building an open movie-poster image-text dataset; "
    "polite: 1 request/s per host by default, obeys robots.txt, stops when blocked)"
)
DEFAULT_MAX_BODY_BYTES = 10_000_000  # a modern title page is 0.5-1 MB of HTML


@dataclass(frozen=True)
class HostPolicy:
    """How one host is treated. ``rate_per_second <= 0`` disables the limit (loopback
    benchmarks only); ``detect_waf`` turns on probing and the WAF gate (IMDb's hosts)."""

    rate_per_second: float = 1.0
    concurrency: int = 4
    obey_robots: bool = True
    detect_waf: bool = True


@dataclass
class ClientSettings:
    base_url: str = setting("", "the main host a crawl asks (IMDb's, or a stand-in); other hosts are allowed by name")
    rate_per_second: float = setting(
        1.0,
        "requests per second per host, across all its concurrent requests; <= 0 disables (benchmarks)",
        env="MPDS_RATE",
    )
    concurrency: int = setting(4, "requests in flight per host", env="MPDS_CONCURRENCY")
    timeout_s: float = setting(30.0, "seconds one request may take")
    max_retries: int = setting(4, "retries after the first attempt (408, 429, 5xx and connection errors)")
    backoff_base_s: float = setting(
        1.0, "first retry's backoff; doubled each retry, with jitter", env="MPDS_BACKOFF_BASE_S"
    )
    backoff_max_s: float = setting(60.0, "longest wait before a retry (Retry-After included)")
    user_agent: str = DEFAULT_USER_AGENT
    contact: str = setting(
        "",
        "an e-mail or URL sent in the User-Agent so a host's operator can reach you (Wikimedia's policy asks for one)",
        env="MPDS_CONTACT",
    )
    extra_allowed_hosts: tuple[str, ...] = setting(
        ("m.media-amazon.com", "ia.media-imdb.com", "images-na.ssl-images-amazon.com"),
        "hosts besides base_url's that may be asked (IMDb's image CDN)",
    )
    obey_robots: bool = setting(True, "read and obey each host's robots.txt (RFC 9309)")
    max_body_bytes: int = setting(
        DEFAULT_MAX_BODY_BYTES,
        "cap on one response body, after decoding (pages, robots.txt): over it the id is 'failed', unread; "
        "fetch(max_bytes=) overrides it, and images have their own cap (max_bytes of the download assets)",
        config_name="max_page_bytes",
    )
    # hostname (or host:port) -> its own policy; any other host gets the defaults above
    host_policies: dict[str, HostPolicy] = field(default_factory=dict)

    def __post_init__(self):
        # Settings cross process boundaries as plain dicts (download workers): rebuild the policies.
        self.host_policies = {
            host.lower(): policy if isinstance(policy, HostPolicy) else HostPolicy(**policy)
            for host, policy in self.host_policies.items()
        }
        self.extra_allowed_hosts = tuple(self.extra_allowed_hosts)

    def allowed_hosts(self) -> frozenset[str]:
        base_host = (urlsplit(self.base_url).hostname or "").lower() if self.base_url else ""
        hosts = {h.lower() for h in self.extra_allowed_hosts} | {h.split(":")[0] for h in self.host_policies}
        return frozenset(hosts | ({base_host} if base_host else set()))

    def policy_for(self, netloc: str) -> HostPolicy:
        netloc = netloc.lower()
        policy = self.host_policies.get(netloc) or self.host_policies.get(netloc.split(":")[0])
        if policy is not None:
            return policy
        return HostPolicy(self.rate_per_second, self.concurrency, self.obey_robots, detect_waf=True)

    def with_host(self, url: str, policy: HostPolicy | None = None) -> ClientSettings:
        """A copy that allows ``url``'s host (with ``policy`` for it, if given)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        policies = dict(self.host_policies)
        if policy is not None and host:
            policies[parts.netloc.lower()] = policy
        return replace(self, extra_allowed_hosts=(*self.extra_allowed_hosts, host), host_policies=policies)

    def header_user_agent(self) -> str:
        """The User-Agent sent: the product and purpose, and the contact when one is set."""
        if not self.contact:
            return self.user_agent
        return (
            f"{self.user_agent.rstrip(')')}; contact: {self.contact})"
            if self.user_agent.endswith(")")
            else (f"{self.user_agent} (contact: {self.contact})")
        )
