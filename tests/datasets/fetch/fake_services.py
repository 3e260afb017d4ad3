"""A real HTTP server on 127.0.0.1 that speaks the parts of Zenodo's and the GDC's APIs that
``bench data`` uses, with Range support and faults injected per file.

Zenodo: ``GET /api/records/<id>`` and ``GET /api/records/<id>/files/<key>/content``.
GDC: ``POST /files`` (filters of ``in`` clauses, ``size``/``from`` paging) and
``GET /data/<file_id>``. Every handler finishes in bounded time; the server stops with the test.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Fault:
    """What the server does on one request for a file (consumed in order)."""

    kind: str  # "status", "drop", "corrupt", "slow", "stall", "ignore-range"
    status: int = 500
    after: int = 0  # drop: bytes sent before the connection is cut
    delay: float = 0.0  # slow: per chunk; stall: before the first byte
    chunk: int = 4096


@dataclass
class FakeServices:
    files: dict[str, bytes] = field(default_factory=dict)  # URL path -> content
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # zenodo record -> files
    missing_records: set[str] = field(default_factory=set)
    gdc_hits: list[dict[str, Any]] = field(default_factory=list)
    log: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, range)
    gdc_queries: list[dict[str, Any]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    # -- building the catalogue ------------------------------------------------------------

    def add_zenodo_file(self, record: str, key: str, data: bytes, size: int | None = None) -> str:
        path = f"/api/records/{record}/files/{key}/content"
        self.files[path] = data
        self.records.setdefault(record, []).append(
            {
                "key": key,
                "size": len(data) if size is None else size,
                "checksum": "md5:" + hashlib.md5(data).hexdigest(),
                "links": {"self": self.base + path},
            }
        )
        return path

    def add_gdc_file(
        self, file_id: str, file_name: str, data: bytes, attrs: dict[str, str], **extra: Any
    ) -> str:
        path = f"/data/{file_id}"
        self.files[path] = data
        hit = {"file_id": file_id, "file_name": file_name, "file_size": len(data),
               "md5sum": hashlib.md5(data).hexdigest(), "_attrs": attrs, **extra}  # fmt: skip
        self.gdc_hits.append(hit)
        return path

    def content_requests(self, path: str) -> list[str]:
        """The Range headers ('' for none) of the requests for one file."""
        return [rng for method, p, rng in self.log if p == path and method == "GET"]


def _matches(hit: dict[str, Any], filters: dict[str, Any]) -> bool:
    for clause in filters.get("content", []):
        content = clause["content"]
        value = hit["_attrs"].get(content["field"])
        if value not in content["value"]:
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        state = self.server.state
        with state.lock:
            state.log.append(("GET", self.path, self.headers.get("Range", "")))
        if self.path.startswith("/api/records/") and self.path.count("/") == 3:
            record = self.path.rsplit("/", 1)[1]
            if record in state.missing_records or record not in state.records:
                return self._send_json(404, {"status": 404, "message": "not found"})
            return self._send_json(200, {"id": record, "files": state.records[record]})
        if self.path not in state.files:
            return self._send_json(404, {"message": "file not found"})
        self._send_file(self.path)

    def do_POST(self) -> None:  # noqa: N802
        state = self.server.state
        with state.lock:
            state.log.append(("POST", self.path, ""))
        if self.path != "/files":
            return self._send_json(404, {"message": "no such endpoint"})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with state.lock:
            state.gdc_queries.append(body)
        hits = [h for h in state.gdc_hits if _matches(h, body["filters"])]
        start, size = int(body.get("from", 0)), int(body.get("size", 10))
        page = [{k: v for k, v in h.items() if k != "_attrs"} for h in hits[start : start + size]]
        pagination = {"count": len(page), "total": len(hits), "from": start, "size": size}
        self._send_json(200, {"data": {"hits": page, "pagination": pagination}, "warnings": {}})

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_file(self, path: str) -> None:
        state = self.server.state
        with state.lock:
            queue = state.faults.get(path) or []
            fault = queue.pop(0) if queue else None
        data = state.files[path]
        if fault and fault.kind == "status":
            return self._send_json(fault.status, {"message": "injected"})
        if fault and fault.kind == "corrupt":
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and not (fault and fault.kind == "ignore-range"):
            start = int(rng[len("bytes=") :].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._write_body(body, fault)

    def _write_body(self, body: bytes, fault: Fault | None) -> None:
        state = self.server.state
        with state.lock:
            state.active += 1
            state.max_active = max(state.max_active, state.active)
        try:
            if fault and fault.kind == "drop":
                self.wfile.write(body[: fault.after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # cut mid-body
                return
            if fault and fault.kind == "stall":
                time.sleep(fault.delay)
            chunk = fault.chunk if fault else 1 << 16
            for i in range(0, len(body), chunk):
                if i and fault and fault.kind == "slow":
                    time.sleep(fault.delay)  # between chunks: done when the last byte is out
                self.wfile.write(body[i : i + chunk])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing more to send
        finally:
            with state.lock:
                state.active -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: FakeServices


def start(state: FakeServices) -> tuple[_Server, threading.Thread]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = state
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return server, thread
