"""Fixtures of the fetcher tests: a loopback-only guard, the fake services, a fast client."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from histobench.datasets.fetch.http import FetchSettings, HttpClient
from tests.datasets.fetch.fake_services import FakeServices, start

_real_connect = socket.socket.connect


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only localhost is allowed
        return host == "localhost"


def _loopback_only(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else None
    inet = self.family in (socket.AF_INET, socket.AF_INET6)
    if host is not None and inet and not _is_loopback(str(host)):
        raise ConnectionRefusedError(f"test guard: refused to reach {host} (loopback only)")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No fetcher test can reach any address outside 127.0.0.0/8, whatever the code does."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServices]:
    state = FakeServices()
    server, thread = start(state)
    monkeypatch.setenv("HISTOBENCH_ZENODO_URL", state.base)
    monkeypatch.setenv("HISTOBENCH_GDC_URL", state.base)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


FAST = FetchSettings(
    connect_timeout=2.0, read_timeout=2.0, retries=3, backoff_factor=0.01, backoff_max=0.05,
    parallel=2,
)  # fmt: skip
# The same flags on the command line.
FAST_FLAGS = ("--retries", "3", "--timeout", "2", "--connect-timeout", "2", "--backoff", "0.01")


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(FAST)
