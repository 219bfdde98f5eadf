"""How the service listens: the uvicorn configuration `serve` runs (`make_server_config`), the Host names it
answers, and a deadline on request heads that uvicorn does not have.

What the configuration bounds, and what a client sees when it hits the bound:

| bound                                    | default | when exceeded                                      |
|------------------------------------------|---------|----------------------------------------------------|
| open connections + requests in progress  | 64      | 503 (uvicorn's `limit_concurrency`)                |
| open connections (`connection_cap`)      | 256     | a new one is closed at once: file descriptors stay bounded |
| time to send the request head            | 30 s    | connection closed (also one that sends nothing)    |
| time to send the body                    | 30 s    | 408, connection closed (`read_timeout`)            |
| graceful shutdown (SIGTERM, Ctrl-C)      | 10 s    | requests still running are cancelled; it exits     |

uvicorn starts its keep-alive timer only after a response, so a client that opens a connection and sends half
a request head (slowloris) holds it for ever; a thousand of them use up the file descriptors of a usual
account (`ulimit -n` 1024) and then nobody gets in. `DeadlineH11Protocol` closes such connections after
`read_timeout`, and closes new connections beyond `connection_cap(limit_concurrency)`. While an attacker holds
`limit_concurrency` connections, everyone else gets 503 until the deadline closes them: the limits keep the
service alive and its memory bounded, they do not tell attackers from clients. A reverse proxy (nginx
`client_header_timeout`, `client_body_timeout`, `limit_conn`) does the same job, and TLS, in front of a service
that other machines reach.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from mmkeras._validation import check_int, check_number
from mmkeras.serving.app import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, DEFAULT_READ_TIMEOUT, create_app

try:
    import resource  # Unix only: the file-descriptor limit
except ImportError:
    resource = None

DEFAULT_LIMIT_CONCURRENCY = 64
"""uvicorn's `limit_concurrency`: it counts open connections (idle keep-alive ones too) and running requests."""
DEFAULT_GRACEFUL_TIMEOUT = 10.0
"""Seconds a stopping server waits for running requests (Kubernetes sends SIGKILL 30 s after SIGTERM)."""
LIMITS = {"max_body_bytes": (1024, 2**30), "max_batch": (1, 4096), "limit_concurrency": (1, 10_000),
          "read_timeout": (0.0, 3600.0), "graceful_timeout": (0.0, 3600.0)}
"""Sane ranges of the settings (`mmkeras serve` checks the same ones as usage errors)."""
REFUSAL_LOG_INTERVAL = 10.0
"""Seconds between two log lines about connections closed over the cap (a flood of them is one line per 10 s)."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")

logger = logging.getLogger("uvicorn.error")


def _host_header_form(host: str) -> str:
    """`host` as it appears in a Host header: IPv6 addresses in brackets."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host.lower()


def is_loopback(host: str) -> bool:
    """Whether `host` listens on this machine only (`127.0.0.0/8`, `::1`, `localhost`)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def trusted_hosts(host: str, extra=()) -> list[str]:
    """The Host header values the service answers when it listens on `host`.

    Always the loopback names, plus `host` itself; for a wildcard (`0.0.0.0`, `::`) the machine's name too
    (other machines must be listed in `extra`: `mmkeras serve --allowed-host NAME_OR_ADDRESS`).

    Example:
    >>> trusted_hosts("127.0.0.1")
    ['127.0.0.1', 'localhost', '[::1]']
    >>> trusted_hosts("::1", extra=["models.example.org"])
    ['127.0.0.1', 'localhost', '[::1]', 'models.example.org']
    """
    names = list(LOOPBACK_HOSTS)
    if host in WILDCARD_HOSTS:
        names.append(socket.gethostname().lower())  # not getfqdn(): a DNS lookup that can hang offline
    else:
        names.append(_host_header_form(host))
    names += [_host_header_form(h) for h in extra]
    return list(dict.fromkeys(names))


def exposure_warning(host: str, allowed_hosts=()) -> str | None:
    """The warning to show when `host` is not a loopback address (None when it is)."""
    if is_loopback(host):
        return None
    return (f"--host {host} is not a loopback address: every machine that can reach this one can use the "
            f"service, with no authentication and no TLS. The model directory runs with your rights: serve only "
            f"one you trust. Host headers answered: {trusted_hosts(host, allowed_hosts)} (add more with "
            f"--allowed-host). Put a reverse proxy with TLS and header timeouts (nginx) in front of it.")


def connection_cap(limit_concurrency: int) -> int:
    """Most open connections: 4 x `limit_concurrency` (those between the two get 503), and at most half the
    process's file-descriptor limit (`ulimit -n`), so that accepting never fails for want of descriptors.

    Example:
    >>> 64 <= connection_cap(64) <= 256
    True
    """
    cap = 4 * limit_concurrency
    if resource is not None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:
            cap = min(cap, soft // 2)
    return max(limit_concurrency, cap)


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on what a client owes and a cap on open connections.

    A client owes a request head from the moment it connects (or starts its next request), and after an early
    answer (404, 405, 415) the rest of a body that nobody reads: a connection that has not delivered it within
    `head_timeout` seconds is closed. So is any connection opened while `max_connections` are open. A body the
    app reads has the app's deadline (`read_timeout`: 408), and an idle keep-alive connection uvicorn's (5 s).

    `make_server_config` selects it (a subclass with its settings) as uvicorn's `http` protocol, so the service
    runs on uvicorn's pure-Python h11 parser even where httptools is installed. It reads uvicorn's per-connection
    state (`conn`, `transport`, `connections`, `timeout_keep_alive_task`), checked with uvicorn 0.55 by the
    deadline and connection tests of `tests/test_serving.py`.
    """

    head_timeout: float = DEFAULT_READ_TIMEOUT
    max_connections: int = 4 * DEFAULT_LIMIT_CONCURRENCY
    _refusals = [0, -REFUSAL_LOG_INTERVAL]  # [closed since the last message, time of that message]

    def connection_made(self, transport) -> None:
        self._deadline = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse(transport)
            return
        self._watch()

    def _refuse(self, transport) -> None:
        """Closes a connection over `max_connections`; says so at most once per `REFUSAL_LOG_INTERVAL` seconds."""
        transport.close()
        state = type(self)._refusals  # shared by the connections of one server (one protocol class per config)
        state[0] += 1
        if time.monotonic() - state[1] >= REFUSAL_LOG_INTERVAL:
            logger.warning("%d connections are open (the limit is %d): closed %d new connection(s) since the last "
                           "message", len(self.connections) - 1, self.max_connections, state[0])
            state[:] = [0, time.monotonic()]

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # unsets uvicorn's keep-alive timer
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive timer
        self._watch()

    def connection_lost(self, exc) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def _owes_bytes(self) -> bool:
        """Whether the client owes a request head, or the rest of a body after its answer was sent."""
        theirs, ours = self.conn.their_state, self.conn.our_state
        return not self.transport.is_closing() and (theirs is h11.IDLE or (ours is h11.DONE and
                                                                           theirs is h11.SEND_BODY))

    def _watch(self) -> None:
        if not self._owes_bytes():
            self._stop_deadline()
        elif self._deadline is None and self.timeout_keep_alive_task is None:
            self._deadline = self.loop.call_later(self.head_timeout, self._expired)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._owes_bytes():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            logger.info("%s sent no complete request within %g s: connection closed", client, self.head_timeout)
            self.transport.close()


def make_server_config(model, host: str = "127.0.0.1", port: int = 8000, *,
                       max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, max_batch: int = DEFAULT_MAX_BATCH,
                       limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY, read_timeout: float = DEFAULT_READ_TIMEOUT,
                       graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT, allowed_hosts=(), docs: bool = False,
                       log_level: str = "info") -> uvicorn.Config:
    """The app and the uvicorn configuration that `serve` (and `mmkeras serve`) runs: `uvicorn.Server(config).run()`.

    Args:
        model: str, Path or `Predictor`. The model directory to serve (or the `Predictor` loaded from it).
        host: str. Interface to listen on. Defaults to `"127.0.0.1"` (this machine only).
        port: int. Defaults to `8000`; `0` picks a free port.
        max_body_bytes: int. Request body limit (413). Defaults to 8 MiB.
        max_batch: int. Most examples per request (422 beyond). Defaults to `64`.
        limit_concurrency: int. Open connections plus running requests before new requests get 503; beyond
            `connection_cap(limit_concurrency)` open connections, new ones are closed at once. Defaults to `64`.
        read_timeout: float. Seconds for a request head (else the connection closes) and for a body (else 408).
            Defaults to `30.0`.
        graceful_timeout: float. Seconds a stopping server waits for running requests. Defaults to `10.0`.
        allowed_hosts: list of str. Host header values to answer besides `trusted_hosts(host)`. Defaults to none.
        docs: bool. Serve `/docs`, `/redoc`, `/openapi.json` (they load CDN assets). Defaults to `False`.
        log_level: str. uvicorn's log level. Defaults to `"info"`.

    Returns:
        A `uvicorn.Config`; its `app` is the FastAPI application (`create_app`).

    Raises:
        ValueError: a setting out of its range (`LIMITS`), or a model directory that cannot be served.
    """
    port = check_int("port", port, minimum=0)
    if port > 65535:
        raise ValueError(f"`port` must be an int in [0, 65535]. Received: port={port!r}")
    for name, value in (("max_body_bytes", max_body_bytes), ("max_batch", max_batch),
                        ("limit_concurrency", limit_concurrency)):
        low, high = LIMITS[name]
        if check_int(name, value, minimum=low) > high:
            raise ValueError(f"`{name}` must be an int in [{low}, {high}]. Received: {name}={value!r}")
    read_timeout = check_number("read_timeout", read_timeout, low=0, high=LIMITS["read_timeout"][1],
                                low_inclusive=False)
    graceful_timeout = check_number("graceful_timeout", graceful_timeout, low=0,
                                    high=LIMITS["graceful_timeout"][1])
    if isinstance(allowed_hosts, str):
        allowed_hosts = [allowed_hosts]
    app = create_app(model, max_body_bytes=max_body_bytes, max_batch=max_batch, read_timeout=read_timeout,
                     allowed_hosts=trusted_hosts(host, allowed_hosts), docs=docs)
    protocol = type("ServingProtocol", (DeadlineH11Protocol,),
                    {"head_timeout": read_timeout, "max_connections": connection_cap(limit_concurrency),
                     "_refusals": [0, -REFUSAL_LOG_INTERVAL]})
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, http=protocol,
                          limit_concurrency=limit_concurrency, timeout_graceful_shutdown=graceful_timeout)


def serve(model_dir, host: str = "127.0.0.1", port: int = 8000, **settings) -> None:
    """Serves a model directory over HTTP until stopped (Ctrl-C, SIGTERM): `mmkeras serve MODEL_DIR`.

    Loads the model (a program: serve only a directory you trust), logs a warning when `host` is not a loopback
    address, then runs `uvicorn.Server(make_server_config(model_dir, host, port, **settings))`.

    Args:
        model_dir: str or Path. A model directory from `mmkeras.export.export_saved_model`.
        host: str. Interface to listen on. Defaults to `"127.0.0.1"` (this machine only); `"0.0.0.0"` listens
            on every interface.
        port: int. Defaults to `8000`; `0` picks a free port.
        **settings: the keyword arguments of `make_server_config` (`max_body_bytes`, `max_batch`,
            `limit_concurrency`, `read_timeout`, `graceful_timeout`, `allowed_hosts`, `docs`, `log_level`).
    """
    config = make_server_config(model_dir, host, port, **settings)
    warning = exposure_warning(host, settings.get("allowed_hosts", ()))
    if warning:
        logger.warning(warning)
    uvicorn.Server(config).run()
