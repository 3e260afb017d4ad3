"""What resumable, verified downloads cost: ``bench data``'s downloader against a plain copy.

A local HTTP server (127.0.0.1, in this process) serves one file from memory. Baseline: the
stdlib's ``urllib.request`` streamed to disk in 1 MiB blocks with an md5 on the way and an
fsync at the end (what a careful hand-written fetch script does). histobench: ``Downloader.fetch_all`` (urllib3 pool with Retry,
Range-capable ``.part`` file, md5, fsync, atomic rename, rich progress drawn to a null console).
Also timed: finishing a download of which half was already on disk (the resume path).
Best of ``--rounds`` interleaved rounds.

    python benchmarks/bench_data_fetch.py --mb 256 --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from histobench.datasets.fetch.download import Downloader, RemoteFile, make_download_progress
from histobench.datasets.fetch.http import FetchSettings, HttpClient

PAYLOAD = b""


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:  # noqa: N802
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        view = memoryview(PAYLOAD)[start:]
        for i in range(0, len(view), 1 << 20):
            self.wfile.write(view[i : i + (1 << 20)])


def _baseline(url: str, out: Path) -> str:
    digest = hashlib.md5()
    with urllib.request.urlopen(url) as response, out.open("wb") as fh:
        while block := response.read(1 << 20):
            fh.write(block)
            digest.update(block)
        fh.flush()
        os.fsync(fh.fileno())  # the same durability as histobench's rename-into-place
    return digest.hexdigest()


def _histobench(client: HttpClient, file: RemoteFile) -> None:
    # The same columns, drawn to a console that is not the terminal.
    progress = Progress(*make_download_progress().columns, console=Console(file=io.StringIO()))
    outcome = Downloader(client, file.path.parent / "q", progress).fetch_all([file], "bench")[0]
    assert outcome.status == "downloaded", outcome


def main() -> None:
    global PAYLOAD
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop("HISTOBENCH_QUIET", None)
    PAYLOAD = os.urandom(args.mb << 20)
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/file"
    client = HttpClient(FetchSettings())
    times: dict[str, list[float]] = {"baseline": [], "histobench": [], "resume half": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for _ in range(args.rounds):
            started = time.perf_counter()
            assert _baseline(url, root / "plain.bin") == md5
            times["baseline"].append(time.perf_counter() - started)
            (root / "plain.bin").unlink()
            for label, preset in (("histobench", 0), ("resume half", len(PAYLOAD) // 2)):
                file = RemoteFile(url, root / "hb.bin", len(PAYLOAD), md5)
                if preset:
                    file.part.write_bytes(PAYLOAD[:preset])
                started = time.perf_counter()
                _histobench(client, file)
                times[label].append(time.perf_counter() - started)
                file.path.unlink()
            shutil.rmtree(root / "q", ignore_errors=True)
    server.shutdown()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{args.mb} MiB over 127.0.0.1, best of {args.rounds}; {load}")
    print("| path | seconds | MiB/s | vs baseline |\n| --- | ---: | ---: | ---: |")
    base = min(times["baseline"])
    for label, values in times.items():
        best = min(values)
        print(f"| {label} | {best:.2f} | {args.mb / best:.0f} | {base / best:.2f}× |")


if __name__ == "__main__":
    main()
