"""Polite HTTP for IIIF servers: one shared httpx client, a bounded number of requests at once, retries
with exponential backoff (and the server's ``Retry-After``) on server errors and dropped connections, and
one line for what still fails.

A 4xx answer (the resource is not there, or not for us) is not retried: :class:`Missing`. A 5xx or 429
answer, a timeout or a broken connection is retried ``tries`` times in all, then :class:`ServerFailure`.
"""

from __future__ import annotations

import json
import random
import threading
import time

import httpx

from ..errors import SegswapError

#: Requests in flight at once: a library's server is shared with its readers.
PARALLEL = 4
#: Attempts per request, the first included.
TRIES = 4
#: The wait before the second attempt, doubled before each next one (plus up to a quarter of it at random).
BACKOFF_SECONDS = 0.5
#: The longest wait a ``Retry-After`` header is obeyed for.
MAX_RETRY_AFTER = 30.0
#: Seconds to connect, and between bytes read.
TIMEOUT = 30.0
RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})


class FetchError(SegswapError):
    """A request that did not give the resource; the message names the URL and why, in one line."""

    def __init__(self, message: str, url: str, status: int | None = None):
        super().__init__(message)
        self.url, self.status = url, status


class Missing(FetchError):
    """The server answered that the resource is not there (or not for us): 4xx but 429."""


class ServerFailure(FetchError):
    """The server kept failing (5xx, 429, timeouts, dropped connections) for every attempt."""


class Fetcher:
    """GETs over one connection pool, at most ``parallel`` at a time (a semaphore, whatever the threads),
    each retried as the module says. Counts what it did (``requests``, ``retries``), for the summary line."""

    def __init__(self, parallel: int = PARALLEL, tries: int = TRIES, backoff: float = BACKOFF_SECONDS,
                 timeout: float = TIMEOUT):
        self.parallel, self.tries, self.backoff = parallel, tries, backoff
        self._slots = threading.BoundedSemaphore(parallel)
        self._lock = threading.Lock()
        self.requests = self.retries = 0
        self.client = httpx.Client(
            timeout=timeout, follow_redirects=True,
            limits=httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel),
            headers={"User-Agent": f"segswap/{_version()} (IIIF harvesting; at most {parallel} requests at once)"})

    def get(self, url: str) -> httpx.Response:
        """The response to GET ``url``, its body read whole; :class:`Missing` or :class:`ServerFailure`."""
        last, status = "", None
        for attempt in range(self.tries):
            wait = self.backoff * 2 ** attempt * (1 + random.random() / 4)
            try:
                with self._slots:
                    self._count(attempt)
                    response = self.client.get(url)
            except httpx.TransportError as err:  # refused, timed out, cut off mid-body
                last, status = (f"{type(err).__name__}: {err}" if str(err) else type(err).__name__), None
            except httpx.InvalidURL as err:
                raise Missing(f"{url}: not a URL segswap can fetch ({err})", url) from None
            else:
                if response.status_code < 400:
                    return response
                status, last = response.status_code, f"{response.status_code} {response.reason_phrase}".strip()
                if response.status_code not in RETRIED_STATUS:
                    raise Missing(f"{url}: {last}", url, response.status_code)
                wait = max(wait, _retry_after(response))
            if attempt + 1 < self.tries:
                time.sleep(wait)
        raise ServerFailure(f"{url}: {last} (after {self.tries} tries)", url, status)

    def get_json(self, url: str, what: str = "document"):
        """GET ``url`` and parse it as JSON; a body that is not JSON is a :class:`FetchError` naming ``what``."""
        response = self.get(url)
        try:
            return json.loads(response.content)
        except ValueError as err:
            raise FetchError(f"{url}: the {what} is not JSON ({err})", url, response.status_code) from None

    def _count(self, attempt: int) -> None:
        with self._lock:
            self.requests += 1
            self.retries += attempt > 0

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _retry_after(response: httpx.Response) -> float:
    """The seconds a ``Retry-After: N`` header asks for (capped), else 0."""
    value = response.headers.get("Retry-After", "")
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        return 0.0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("segswap")
    except PackageNotFoundError:
        return "0.0.0"
