"""``mpds review``: a small web server for the manual rectification of captions.

It serves the review page, a small JSON API for its queue and saves, and the poster
images, and guards them (loopback only unless given an access token). Routes and
security: docs/captions-review.md.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import re
import sys
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ..base.layout import default_data_dir
from .page import FAVICON_SVG, PAGE_CSS, PAGE_HTML, PAGE_JS
from .state import QueueFilter, ReviewState

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKEN_COOKIE = "mpds_review_token"
MAX_BODY_BYTES = 256 * 1024
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
STATIC = {
    "/": ("text/html; charset=utf-8", PAGE_HTML),
    "/index.html": ("text/html; charset=utf-8", PAGE_HTML),
    "/static/review.js": ("text/javascript; charset=utf-8", PAGE_JS),
    "/static/review.css": ("text/css; charset=utf-8", PAGE_CSS),
    "/favicon.svg": ("image/svg+xml", FAVICON_SVG),
    "/favicon.ico": ("image/svg+xml", FAVICON_SVG),  # what a browser asks for by default
}


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~-]{8,}")


class UnsafeBindError(ValueError):
    """A non-loopback bind address without an access token."""


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to expose the page beyond this machine without an access token."""
    if token is not None and not _TOKEN_CHARS.fullmatch(token):
        # It travels in a URL and a cookie: keep it to characters that need no quoting.
        raise UnsafeBindError("the access token must be 8+ characters of A-Z a-z 0-9 . _ ~ -")
    if not is_loopback_host(host) and not token:
        raise UnsafeBindError(
            f"refusing to serve on non-loopback address {host!r} without an access token "
            "(pass --token, or bind to 127.0.0.1)"
        )


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, state: ReviewState, token: str | None, reviewer_default: str | None):
        check_bind(address[0], token)
        super().__init__(address, ReviewHandler)
        self.state = state
        self.token = token
        self.reviewer_default = reviewer_default

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"


def make_review_server(
    data_dir: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    reviewer_default: str | None = None,
) -> ReviewServer:
    """Bind (port 0 picks a free port) without serving: call ``serve_forever``."""
    return ReviewServer((host, port), ReviewState(Path(data_dir)), token, reviewer_default)


def run_review_server(
    data_dir: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    reviewer_default: str | None = None,
) -> None:
    """Serve the review page until interrupted."""
    server = make_review_server(data_dir, host, port, token, reviewer_default)
    hint = "?token=<your token>" if token else ""
    print(f"mpds review: serving {Path(data_dir).resolve()} at {server.url}{hint} (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "mpds-review"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass  # quiet: the terminal is the reviewer's, not a log

    # ------------------------------------------------------------------ dispatch

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self._set_cookie = False
        if not self._allowed(query):
            return
        try:
            if method == "GET":
                self._get(url.path, query)
            else:
                self._post(url.path)
        except BrokenPipeError:
            pass
        except Exception as exc:  # an error page, never a dropped connection
            self._json({"error": f"internal error: {type(exc).__name__}"}, HTTPStatus.INTERNAL_SERVER_ERROR)
            print(f"mpds review: {method} {url.path!r}: {exc!r}", file=sys.stderr)

    def _allowed(self, query: dict) -> bool:
        token = self.server.token
        if token is None:
            if not is_loopback_host(_host_name(self.headers.get("Host") or "")):
                self._json({"error": "this server answers only to a loopback Host"}, HTTPStatus.FORBIDDEN)
                return False
            return True
        offered = [
            query.get("token", [""])[0],
            self.headers.get("X-Review-Token", ""),
            _bearer(self.headers.get("Authorization", "")),
            _cookie(self.headers.get("Cookie", ""), TOKEN_COOKIE),
        ]
        if any(o and hmac.compare_digest(o.encode(), token.encode()) for o in offered):
            self._set_cookie = bool(query.get("token"))
            return True
        self._json({"error": "access token required"}, HTTPStatus.UNAUTHORIZED)
        return False

    def _get(self, path: str, query: dict) -> None:
        if path in STATIC:
            content_type, body = STATIC[path]
            self._send(HTTPStatus.OK, content_type, body.encode("utf-8"))
            return
        if path.startswith("/images/"):
            self._image(path[len("/images/") :])
            return
        state = self.server.state
        if path == "/api/config":
            self._json({"reviewer_default": self.server.reviewer_default})
        elif path == "/api/facets":
            self._json(state.facets())
        elif path == "/api/remerge":
            self._json(state.remerge_status())
        elif path in ("/api/queue", "/api/progress"):
            flt = self._filter(query)
            if flt is None:
                return
            if path == "/api/queue":
                self._json({"ids": state.queue(flt)})
            else:
                self._json(state.progress(flt))
        elif path.startswith("/api/items/"):
            movie_id = _id_or_none(path[len("/api/items/") :])
            item = state.item(movie_id) if movie_id else None
            if item is None:
                self._json({"error": "no such poster"}, HTTPStatus.NOT_FOUND)
            else:
                self._json(item)
        else:
            self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)

    def _post(self, path: str) -> None:
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["api", "items"] or parts[3] != "save":
            self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
            return
        movie_id = _id_or_none(parts[2])
        if movie_id is None:
            self._json({"error": "no such poster"}, HTTPStatus.NOT_FOUND)
            return
        if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
            self._json({"error": "send JSON (Content-Type: application/json)"}, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._json({"error": "request too large"}, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            self._json({"error": "malformed JSON"}, HTTPStatus.BAD_REQUEST)
            return
        text = body.get("text")
        reviewer = _str_or_none(body.get("reviewer")) or self.server.reviewer_default
        if not isinstance(text, str) or not " ".join(text.split()):
            self._json({"error": "the text is empty"}, HTTPStatus.BAD_REQUEST)
            return
        if not reviewer:
            self._json({"error": "enter a reviewer name first"}, HTTPStatus.BAD_REQUEST)
            return
        try:
            outcome = self.server.state.save(
                movie_id,
                text,
                reviewer,
                expected_previous=_str_or_none(body.get("expected_previous")),
                replaced_text=_str_or_none(body.get("replaced_text")),
                note=_str_or_none(body.get("note")),
            )
        except KeyError:
            self._json({"error": "no such poster"}, HTTPStatus.NOT_FOUND)
            return
        if outcome.conflict:
            self._json(
                {
                    "saved": False,
                    "conflict": True,
                    "id": movie_id,
                    "current_text": outcome.current_text,
                    "current_reviewer": outcome.current_reviewer,
                    "created_at": outcome.created_at.isoformat() if outcome.created_at else None,
                },
                HTTPStatus.CONFLICT,
            )
            return
        self._json(
            {
                "saved": True,
                "conflict": False,
                "id": movie_id,
                "file": outcome.path.name if outcome.path else None,
                "created_at": outcome.created_at.isoformat() if outcome.created_at else None,
            }
        )

    # ------------------------------------------------------------------ responses

    def _filter(self, query: dict) -> QueueFilter | None:
        try:
            return QueueFilter(
                order=query.get("order", [QueueFilter.order])[0],
                genre=query.get("genre", [""])[0] or None,
                partition=query.get("partition", [""])[0] or None,
            )
        except ValueError as exc:
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
            return None

    def _image(self, relative: str) -> None:
        """Serve a file under the images folder; anything else is 404."""
        path = _safe_image_path(self.server.state.images_root, relative)
        if path is None:
            self._json({"error": "no such image"}, HTTPStatus.NOT_FOUND)
            return
        self._send(HTTPStatus.OK, IMAGE_TYPES[path.suffix.lower()], path.read_bytes(), cache=True)

    def _json(self, payload, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        self._send(status, "application/json; charset=utf-8", body)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cache-Control", "private, max-age=300" if cache else "no-store")
        if getattr(self, "_set_cookie", False) and self.server.token:
            self.send_header("Set-Cookie", f"{TOKEN_COOKIE}={self.server.token}; HttpOnly; SameSite=Strict; Path=/")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _safe_image_path(images_root: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside ``images_root``, or None if it would leave it."""
    relative = unquote(relative)
    parts = relative.replace("\\", "/").split("/")
    if not relative or "\x00" in relative or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    root = images_root.resolve()
    try:
        path = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    # resolve() follows symlinks, so a link pointing outside is caught here too.
    if not path.is_relative_to(root) or not path.is_file() or path.suffix.lower() not in IMAGE_TYPES:
        return None
    return path


def _host_name(header: str) -> str:
    """'127.0.0.1:8765' -> '127.0.0.1'; '[::1]:8765' -> '::1'."""
    if header.startswith("["):
        return header[1:].split("]")[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _id_or_none(text: str) -> int | None:
    text = text.strip()
    if text.startswith("tt"):
        text = text[2:]
    return int(text) if text.isdigit() and int(text) > 0 else None


def _str_or_none(value) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _bearer(header: str) -> str:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _cookie(header: str, name: str) -> str:
    cookie = SimpleCookie()
    try:
        cookie.load(header)
    except Exception:
        return ""
    return cookie[name].value if name in cookie else ""


# --------------------------------------------------------------------------- command line


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``mpds review`` options (also usable to add them to a subparser)."""
    parser = parser or argparse.ArgumentParser(prog="mpds review", description="serve the caption review page")
    parser.add_argument("--data-dir", default=None, help="default: $MPDS_DATA_DIR or ./data")
    parser.add_argument("--host", default=DEFAULT_HOST, help="bind address (non-loopback needs --token)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--token",
        default=None,
        help="access token required on every request (or $MPDS_REVIEW_TOKEN); "
        "make one with: python -c 'import secrets; print(secrets.token_urlsafe())'",
    )
    parser.add_argument("--reviewer", default=None, help="default reviewer name shown on the page")
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    args = build_parser().parse_args(argv)
    return run_from_args(args, os.environ.get("MPDS_REVIEW_TOKEN"))


def run_from_args(args: argparse.Namespace, env_token: str | None = None) -> int:
    """Run from parsed ``build_parser`` options; 2 when the bind is refused."""
    data_dir = Path(args.data_dir).resolve() if args.data_dir else default_data_dir()
    try:
        run_review_server(data_dir, args.host, args.port, args.token or env_token, args.reviewer)
    except UnsafeBindError as exc:
        print(f"mpds review: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
