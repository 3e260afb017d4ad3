"""One HTTP client for every fetcher: urllib3's pool, its ``Retry`` and timeouts.

Retries are urllib3's: exponential backoff (``backoff_factor * 2**n`` capped at
``backoff_max``) on 429/5xx answers, refused or reset connections and read timeouts, at most
``retries`` times per request (or per file download, resumes included). So every request is
bounded in count and, with the timeouts, in time: at most ``retries + 1`` attempts of at most
``connect_timeout + read_timeout`` (per stalled read) each, plus the capped backoff sleeps.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError
from urllib3.util import Retry, Timeout

from histobench.plugins.errors import DataError

ZENODO_URL_ENV = "HISTOBENCH_ZENODO_URL"
GDC_URL_ENV = "HISTOBENCH_GDC_URL"
DEFAULT_ZENODO_URL = "https://zenodo.org"
DEFAULT_GDC_URL = "https://api.gdc.cancer.gov"
# Answers worth another try: rate limiting and server-side failures.
RETRY_STATUSES = (429, 500, 502, 503, 504)


def zenodo_url() -> str:
    return os.environ.get(ZENODO_URL_ENV, DEFAULT_ZENODO_URL).rstrip("/")


def gdc_url() -> str:
    return os.environ.get(GDC_URL_ENV, DEFAULT_GDC_URL).rstrip("/")


@dataclass(frozen=True)
class FetchSettings:
    """How patient the client is; every field is a ``bench data fetch`` flag."""

    connect_timeout: float = 30.0
    read_timeout: float = 120.0  # longest silence tolerated while a body streams
    retries: int = 5
    backoff_factor: float = 1.0  # seconds; sleeps 0, 2, 4, 8, ... capped at backoff_max
    backoff_max: float = 60.0
    parallel: int = 4  # files downloaded at once

    def retry(self) -> Retry:
        return Retry(
            total=self.retries,
            connect=self.retries,
            read=self.retries,
            status=self.retries,
            other=0,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            status_forcelist=RETRY_STATUSES,
            # GDC's file query is a POST without side effects: safe to repeat.
            allowed_methods=frozenset({"GET", "HEAD", "POST"}),
            raise_on_status=False,  # the last 5xx answer comes back and is reported by URL
            respect_retry_after_header=True,
            retry_after_max=max(1, int(self.backoff_max)),  # a server's Retry-After is capped too
        )

    def timeout(self) -> Timeout:
        return Timeout(connect=self.connect_timeout, read=self.read_timeout)


def _user_agent() -> str:
    from histobench import __version__

    return f"histobench/{__version__} (bench data)"


class HttpClient:
    """A thread-safe pool shared by the metadata queries and the parallel downloads."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=max(1, settings.parallel),
            block=False,
            retries=settings.retry(),
            timeout=settings.timeout(),
            headers={"User-Agent": _user_agent()},
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        retries: Retry | None = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """One request with retries; an exhausted retry budget or a 4xx/5xx is a DataError."""
        try:
            response = self.pool.request(
                method,
                url,
                headers={**(headers or {})},
                body=body,
                retries=retries or self.settings.retry(),
                preload_content=not stream,
                redirect=True,
            )
        except MaxRetryError as exc:
            raise DataError(
                f"{url}: gave up after {self.settings.retries} retries: {describe(exc.reason)}"
            ) from exc
        except HTTPError as exc:
            raise DataError(f"{url}: {describe(exc)}") from exc
        if response.status >= 400 and response.status != 416:  # 416 is the caller's to judge
            response.drain_conn()
            raise http_status_error(url, response.status, response.reason)
        return response

    def get_json(self, url: str, params: dict[str, str] | None = None) -> Any:
        full = f"{url}?{urlencode(params)}" if params else url
        return _decode_json(full, self.request("GET", full, headers={"Accept": "application/json"}))

    def post_json(self, url: str, payload: dict[str, Any]) -> Any:
        response = self.request(
            "POST",
            url,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            body=json.dumps(payload).encode(),
        )
        return _decode_json(url, response)


def http_status_error(url: str, status: int, reason: str | None) -> DataError:
    what = "after retries" if status >= 500 or status == 429 else ""
    return DataError(f"{url}: HTTP {status} {reason or ''} {what}".strip())


def describe(exc: BaseException | None) -> str:
    """A one-line reason from urllib3's nested exceptions."""
    if exc is None:
        return "unknown error"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _decode_json(url: str, response: urllib3.BaseHTTPResponse) -> Any:
    try:
        return json.loads(response.data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{url}: the answer is not JSON ({describe(exc)})") from exc


def format_bytes(n: int | float | None) -> str:
    if n is None:
        return "unknown size"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
