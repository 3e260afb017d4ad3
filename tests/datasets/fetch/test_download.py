"""Resumable, verified downloads against a real HTTP server on 127.0.0.1, with faults."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress

from histobench.datasets.fetch.download import (
    Downloader,
    RemoteFile,
    bytes_to_fetch,
    ensure_free_space,
    summarize,
)
from histobench.datasets.fetch.http import HttpClient
from histobench.plugins.errors import DataError
from tests.datasets.fetch.conftest import FAST
from tests.datasets.fetch.fake_services import FakeServices, Fault

SIZE = 300_000


def _payload(seed: int = 0, size: int = SIZE) -> bytes:
    return os.urandom(0) + bytes((i * 31 + seed) % 251 for i in range(size))


def _progress() -> Progress:
    return Progress(console=Console(file=StringIO(), force_terminal=False))


def _remote(services: FakeServices, tmp_path: Path, data: bytes, name: str = "f.bin") -> RemoteFile:
    path = f"/data/{name}"
    services.files[path] = data
    return RemoteFile(
        services.base + path, tmp_path / "out" / name, len(data), hashlib.md5(data).hexdigest()
    )


def _downloader(client: HttpClient, tmp_path: Path) -> Downloader:
    return Downloader(client, tmp_path / "quarantine", _progress())


def test_a_dropped_connection_is_resumed_with_range(services, client, tmp_path):
    data = _payload()
    file = _remote(services, tmp_path, data)
    services.faults[f"/data/{file.path.name}"] = [Fault("drop", after=100_000)]
    outcome = _downloader(client, tmp_path).fetch(file)
    assert outcome.status == "downloaded", outcome
    assert file.path.read_bytes() == data
    assert not file.part.exists()
    ranges = services.content_requests("/data/f.bin")
    assert ranges[0] == "" and len(ranges) == 2
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 100_000  # continued, not restarted


def test_a_part_file_left_by_an_earlier_run_is_continued(services, client, tmp_path):
    data = _payload(1)
    file = _remote(services, tmp_path, data)
    file.path.parent.mkdir(parents=True)
    file.part.write_bytes(data[:123_456])
    outcome = _downloader(client, tmp_path).fetch(file)
    assert outcome.status == "downloaded"
    assert file.path.read_bytes() == data
    assert services.content_requests("/data/f.bin") == ["bytes=123456-"]


def test_a_server_ignoring_range_restarts_the_part_cleanly(services, client, tmp_path):
    data = _payload(2)
    file = _remote(services, tmp_path, data)
    file.path.parent.mkdir(parents=True)
    file.part.write_bytes(data[:50_000])
    services.faults["/data/f.bin"] = [Fault("ignore-range")]
    outcome = _downloader(client, tmp_path).fetch(file)
    assert outcome.status == "downloaded"
    assert file.path.read_bytes() == data  # not the first 50 kB twice
    assert services.content_requests("/data/f.bin") == ["bytes=50000-"]  # its 200 was used


def test_corrupted_bytes_are_caught_by_md5_and_quarantined(services, client, tmp_path):
    data = _payload(3)
    file = _remote(services, tmp_path, data)
    services.faults["/data/f.bin"] = [Fault("corrupt")]
    downloader = _downloader(client, tmp_path)
    outcome = downloader.fetch(file)
    assert outcome.status == "quarantined"
    assert "md5" in outcome.detail and "kept aside" in outcome.detail
    assert not file.path.exists() and not file.part.exists()  # never used
    kept = list((tmp_path / "quarantine").glob("f.bin.*.quarantined"))
    assert len(kept) == 1 and kept[0].read_bytes() != data
    # The next run downloads it again (the fault was one-off) and succeeds.
    assert downloader.fetch(file).status == "downloaded"
    assert file.path.read_bytes() == data


def test_500_twice_then_success_is_retried(services, client, tmp_path):
    data = _payload(4)
    file = _remote(services, tmp_path, data)
    services.faults["/data/f.bin"] = [Fault("status", 500), Fault("status", 500)]
    outcome = _downloader(client, tmp_path).fetch(file)
    assert outcome.status == "downloaded"
    assert len(services.content_requests("/data/f.bin")) == 3


def test_retries_are_bounded(services, tmp_path):
    data = _payload(5)
    file = _remote(services, tmp_path, data)
    services.faults["/data/f.bin"] = [Fault("status", 503)] * 10
    client = HttpClient(dataclasses.replace(FAST, retries=2))
    outcomes = _downloader(client, tmp_path).fetch_all([file], "t")
    assert outcomes[0].status == "failed"
    assert "HTTP 503" in outcomes[0].detail and file.url in outcomes[0].detail
    assert len(services.content_requests("/data/f.bin")) == 3  # 1 + 2 retries, no more


def test_404_names_the_url_and_status(services, client, tmp_path):
    file = RemoteFile(services.base + "/data/nope", tmp_path / "nope", 10, "0" * 32)
    outcome = _downloader(client, tmp_path).fetch_all([file], "t")[0]
    assert outcome.status == "failed"
    assert f"{services.base}/data/nope: HTTP 404" in outcome.detail
    assert len(services.content_requests("/data/nope")) == 1  # a 4xx is not retried


def test_a_slow_server_completes_with_progress_moving(services, client, tmp_path):
    data = _payload(6, 64_000)
    file = _remote(services, tmp_path, data)
    services.faults["/data/f.bin"] = [Fault("slow", delay=0.02, chunk=2000)]  # ~0.6 s
    progress = _progress()
    seen: list[float] = []
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 20
        while not done.is_set() and time.monotonic() < deadline:
            seen.extend(t.completed for t in progress.tasks)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    outcome = Downloader(client, tmp_path / "q", progress).fetch_all([file], "slow")[0]
    done.set()
    watcher.join()
    assert outcome.status == "downloaded"
    partial = {v for v in seen if 0 < v < len(data)}
    assert len(partial) >= 5, f"progress did not move while bytes arrived: {sorted(partial)}"
    overall = progress.tasks[0]
    assert overall.completed == len(data)


def test_a_stalled_server_times_out_within_the_configured_bounds(services, tmp_path):
    data = _payload(7, 10_000)
    file = _remote(services, tmp_path, data)
    services.faults["/data/f.bin"] = [Fault("stall", delay=1.5)] * 3
    client = HttpClient(dataclasses.replace(FAST, read_timeout=0.3, retries=1))
    started = time.monotonic()
    outcome = _downloader(client, tmp_path).fetch_all([file], "t")[0]
    elapsed = time.monotonic() - started
    assert outcome.status == "failed"
    assert "Timeout" in outcome.detail, outcome.detail
    assert elapsed < 5, f"took {elapsed:.1f}s: read timeout not honoured"


def test_parallel_downloads_are_bounded(services, tmp_path):
    files = [_remote(services, tmp_path, _payload(i, 20_000), f"f{i}.bin") for i in range(6)]
    for f in files:
        services.faults[f"/data/{f.path.name}"] = [Fault("slow", delay=0.02, chunk=2000)]
    client = HttpClient(dataclasses.replace(FAST, parallel=2))
    outcomes = _downloader(client, tmp_path).fetch_all(files, "many")
    assert all(o.status == "downloaded" for o in outcomes)
    assert services.max_active == 2


def test_a_partial_run_reports_what_is_complete_and_a_rerun_finishes(services, client, tmp_path):
    good = _remote(services, tmp_path, _payload(8, 5000), "good.bin")
    late = _remote(services, tmp_path, _payload(9, 5000), "late.bin")
    services.faults["/data/late.bin"] = [Fault("status", 404)]
    downloader = _downloader(client, tmp_path)
    outcomes = downloader.fetch_all([good, late], "set")
    line = summarize(outcomes, "set")
    assert "1 of 2 file(s) complete" in line and "late.bin" in line and "HTTP 404" in line
    assert "again" in line
    rerun = downloader.fetch_all([good, late], "set")
    assert [o.status for o in rerun] == ["present", "downloaded"]
    assert services.content_requests("/data/good.bin") == [""]  # not fetched twice


def test_free_disk_is_checked_before_starting(tmp_path):
    with pytest.raises(DataError, match="not enough free disk"):
        ensure_free_space(tmp_path / "not" / "yet", 10**18, "a huge set")
    ensure_free_space(tmp_path, 1, "one byte")  # no error


def test_bytes_to_fetch_counts_what_is_missing(tmp_path):
    a = RemoteFile("http://127.0.0.1/a", tmp_path / "a", 100, None)
    b = RemoteFile("http://127.0.0.1/b", tmp_path / "b", 50, None)
    a.path.write_bytes(b"x" * 100)  # complete
    b.part.write_bytes(b"x" * 20)  # partial
    assert bytes_to_fetch([a, b]) == 30


def test_the_guard_keeps_these_tests_on_loopback(services):
    import socket

    with pytest.raises(ConnectionRefusedError, match="loopback only"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1: never contacted
    with socket.create_connection(("127.0.0.1", int(services.base.rsplit(":", 1)[1]))):
        pass
