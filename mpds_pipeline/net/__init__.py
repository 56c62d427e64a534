"""The only code that opens sockets: one polite HTTP client for every host (IMDb,
its image CDN, Common Crawl, the Wayback Machine, OMDb, Wikimedia), with per-host
politeness, robots.txt, retries, bounded reads, block detection and redaction."""
