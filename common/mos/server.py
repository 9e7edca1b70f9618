"""The study's HTTP server (standard library): the page, the images by id, and the ratings.

    GET  /                       the page (page/index.html, app.js, style.css)
    GET  /img/ID                 one study image (ID: 16 hex digits from the manifest)
    GET  /api/session?rater=R    {"calibration": [{"id", "score"}], "trials": [ids in R's order],
                                  "done": [ids R has rated]}
    POST /api/rate               {"rater": R, "image": ID, "score": 1-5, "seconds": s} -> {"done": n}

Each rating is appended to ratings.csv and flushed to disk (fsync) before the reply, so a crash
or a closed tab loses at most the rating in flight. A rater rates each image once (a second
rating of the same image is refused), which is what lets a returning rater continue. Anything
malformed gets a 4xx and writes nothing.

Many raters at once: the listen backlog holds REQUEST_QUEUE connections waiting to be accepted,
each connection gets a thread (at most MAX_CONNECTIONS at a time; more are answered 503 at once)
and REQUEST_TIMEOUT seconds per read, so idle or half-sent requests do not pile up.
"""
import csv
import io
import json
import math
import os
import threading
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from common.mos.study import (
    ID_PATTERN,
    RATER_PATTERN,
    RATINGS,
    RATINGS_FIELDS,
    SCORES,
    StudyError,
    image_keys,
    load_manifest,
    rater_order,
    read_ratings,
)

MAX_BODY = 1024  # bytes; a rating is under 150
MAX_SECONDS = 24 * 3600.0
REQUEST_QUEUE = 128  # listen backlog: a class of raters pressing "rate" at once
MAX_CONNECTIONS = 128  # handler threads at a time
REQUEST_TIMEOUT = 10.0  # seconds a connection may take to send each part of a request
PAGE = {"/": ("index.html", "text/html; charset=utf-8"),
        "/app.js": ("app.js", "text/javascript; charset=utf-8"),
        "/style.css": ("style.css", "text/css; charset=utf-8")}


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, reason: str):
        super().__init__(reason)
        self.status = status


class Study:
    """A study folder opened for rating: manifest, ratings done so far, the append-only CSV."""

    def __init__(self, study_dir):
        self.dir = Path(study_dir)
        self.manifest = load_manifest(self.dir)
        self.keys = image_keys(self.manifest)
        self.ids = {key: image_id for image_id, key in self.keys.items()}
        self.lock = threading.Lock()
        self.done: dict[str, set[str]] = {}
        path = self.dir / RATINGS
        rows, _ = read_ratings(path)
        for row in rows:
            image_id = self.ids.get((row["item"], row["method"]))
            if image_id is not None:
                self.done.setdefault(row["rater"], set()).add(image_id)
        size = path.stat().st_size if path.exists() else 0
        cut = size > 0 and _last_byte(path) != b"\n"
        try:
            self.file = open(path, "a", newline="")
        except OSError as exc:
            raise StudyError(f"{path}: cannot open for appending ({exc.strerror or exc})") from None
        if size == 0:
            self._append(RATINGS_FIELDS)
        elif cut:  # a row cut off by a crash: end it, so the next rating starts its own line
            self.file.write("\n")
            self.file.flush()

    def _append(self, fields) -> None:
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow(fields)
        self.file.write(line.getvalue())  # one write call per row
        self.file.flush()
        os.fsync(self.file.fileno())

    def session(self, rater: str) -> dict:
        with self.lock:
            done = self.done.get(rater, set())
            return {
                "calibration": [{"id": c["id"], "score": c["score"]} for c in self.manifest["calibration"]],
                "trials": rater_order(self.manifest, rater),
                "done": sorted(done),
            }

    def rate(self, rater: str, image_id: str, score: int, seconds: float) -> int:
        item, method = self.keys[image_id]
        with self.lock:
            done = self.done.setdefault(rater, set())
            if image_id in done:
                raise RequestError(HTTPStatus.CONFLICT, "this rater has already rated this image")
            stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            self._append((rater, item, method, score, f"{seconds:.3f}", stamp))
            done.add(image_id)
            return len(done)

    def close(self) -> None:
        self.file.close()


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def _check_rater(value) -> str:
    if not isinstance(value, str) or not RATER_PATTERN.fullmatch(value):
        raise RequestError(HTTPStatus.BAD_REQUEST,
                           "rater id: 1-64 letters, digits or _.- (starting with a letter or digit)")
    return value


def parse_rating(body: bytes, study: Study) -> tuple[str, str, int, float]:
    """A POST body -> (rater, image id, score, seconds), or RequestError."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestError(HTTPStatus.BAD_REQUEST, "body is not JSON") from None
    if not isinstance(data, dict) or set(data) != {"rater", "image", "score", "seconds"}:
        raise RequestError(HTTPStatus.BAD_REQUEST, "expected exactly rater, image, score, seconds")
    rater = _check_rater(data["rater"])
    image_id, score, seconds = data["image"], data["score"], data["seconds"]
    if not isinstance(image_id, str) or image_id not in study.keys:
        raise RequestError(HTTPStatus.NOT_FOUND, "unknown image")
    if type(score) is not int or score not in SCORES:  # not bool, not 3.0
        raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, "score must be an integer 1-5")
    # the range before isfinite: float() of a 400-digit integer overflows
    if type(seconds) not in (int, float) or not 0 <= seconds <= MAX_SECONDS or not math.isfinite(seconds):
        raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY,
                           f"seconds must be a number of seconds from 0 to {MAX_SECONDS:.0f}")
    return rater, image_id, score, float(seconds)


class Handler(BaseHTTPRequestHandler):
    study: Study  # set on the subclass made by make_server
    server_version = "mos"
    sys_version = ""
    quiet = True
    timeout = REQUEST_TIMEOUT  # socket timeout of each connection (StreamRequestHandler sets it)

    def log_message(self, format, *args):  # noqa: A002  (the base class's signature)
        if not self.quiet:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "private, max-age=3600" if cache else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: dict) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, exc: RequestError) -> None:
        self._json(exc.status, {"error": str(exc)})

    def do_GET(self):  # noqa: N802
        url = urlsplit(self.path)
        try:
            if url.path in PAGE:
                name, content_type = PAGE[url.path]
                self._send(200, (self.study.dir / "page" / name).read_bytes(), content_type)
            elif url.path.startswith("/img/"):
                image_id = url.path[len("/img/"):]
                if not ID_PATTERN.fullmatch(image_id) or image_id not in self.study.keys:
                    raise RequestError(HTTPStatus.NOT_FOUND, "unknown image")
                data = (self.study.dir / "images" / f"{image_id}.png").read_bytes()
                self._send(200, data, "image/png", cache=True)
            elif url.path == "/api/session":
                raters = parse_qs(url.query).get("rater", [])
                if len(raters) != 1:
                    raise RequestError(HTTPStatus.BAD_REQUEST, "give one rater")
                self._json(200, self.study.session(_check_rater(raters[0])))
            else:
                raise RequestError(HTTPStatus.NOT_FOUND, "not found")
        except RequestError as exc:
            self._error(exc)
        except OSError as exc:  # a study file gone missing
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"cannot read ({exc.strerror or exc})"})
        except Exception as exc:  # noqa: BLE001  (a reply, never a dead handler)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": type(exc).__name__})

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802
        try:
            if urlsplit(self.path).path != "/api/rate":
                raise RequestError(HTTPStatus.NOT_FOUND, "not found")
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self.close_connection = True
                raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            if int(length) > MAX_BODY:
                self.close_connection = True  # the body is not read
                raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
            try:
                body = self.rfile.read(int(length))
            except TimeoutError:
                self.close_connection = True
                raise RequestError(HTTPStatus.REQUEST_TIMEOUT, "body not sent in time") from None
            if len(body) != int(length):
                self.close_connection = True
                raise RequestError(HTTPStatus.BAD_REQUEST, "body shorter than its Content-Length")
            rater, image_id, score, seconds = parse_rating(body, self.study)
            done = self.study.rate(rater, image_id, score, seconds)
            self._json(200, {"done": done})
        except RequestError as exc:
            self._error(exc)
        except OSError as exc:  # the disk: nothing acknowledged, the page retries
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"rating not saved ({exc.strerror or exc})"})
        except Exception as exc:  # noqa: BLE001  (a reply, never a dead handler)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": type(exc).__name__})


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = REQUEST_QUEUE  # socketserver's default of 5 reset connections under load

    def __init__(self, study: Study, address, handler, max_connections: int = MAX_CONNECTIONS):
        self.study = study
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):  # at the thread cap: refuse at once, keep serving
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Retry-After: 1\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()  # no thread was started
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def server_close(self):
        super().server_close()
        self.study.close()


def make_server(study_dir, host: str = "127.0.0.1", port: int = 8000, quiet: bool = True,
                timeout: float = REQUEST_TIMEOUT, max_connections: int = MAX_CONNECTIONS) -> StudyServer:
    """A server bound to host:port (port 0: any free port): serve_forever(), shutdown(), server_close().

    timeout: seconds a connection may stay silent mid-request; max_connections: handler threads."""
    study = Study(study_dir)
    handler = type("StudyHandler", (Handler,), {"study": study, "quiet": quiet, "timeout": timeout})
    try:
        return StudyServer(study, (host, port), handler, max_connections)
    except OSError:
        study.close()
        raise
