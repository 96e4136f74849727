"""Running the gateway under uvicorn with its HTTP limits, and logs that never hold a query string.

:func:`server_config` turns a policy's ``http`` section into uvicorn settings:

- the h11 parser buffers at most ``max_header_bytes`` of request line and headers (uvicorn answers 400
  beyond it, before the app sees anything);
- :class:`GatewayH11Protocol` closes a connection whose request head does not arrive within
  ``request_timeout_seconds`` with 408 (uvicorn itself only times out idle keep-alive connections, so a
  client sending a header byte every few seconds would hold a connection for ever); the body's share of
  the same deadline is enforced by the app;
- ``max_connections`` open connections per process, beyond which uvicorn answers 503;
- ``X-Forwarded-For`` is believed only from ``trusted_proxies`` (by default from nobody);
- the access log goes through :class:`QueryStringFilter`, which drops query strings and cuts long paths.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from memberscope.gateway.policy import Policy

__all__ = ["GatewayH11Protocol", "QueryStringFilter", "log_config", "run_server", "server_config"]

#: Longest path the access log shows.
ACCESS_LOG_PATH = 256
#: Attribute of the ``uvicorn.Config`` (set by :func:`server_config`) holding the request-head deadline (s).
REQUEST_TIMEOUT_ATTR = "memberscope_request_timeout"


class QueryStringFilter(logging.Filter):
    """Removes the query string from uvicorn access-log records and cuts paths to ``ACCESS_LOG_PATH``.

    uvicorn logs ``(client, method, path?query, http version, status)``; a client that puts a key or a
    record in the URL must not get it written to the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path = args[2].split("?", 1)[0]
            if len(path) > ACCESS_LOG_PATH:
                path = path[: ACCESS_LOG_PATH - 1] + "…"
            record.args = (args[0], args[1], path, args[3], args[4])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration plus the query-string filter on the access log, and the gateway's
    own logger (probing alerts, limits) on the same handler as uvicorn's errors."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["no_query_string"] = {"()": "memberscope.gateway.server.QueryStringFilter"}
    config["handlers"]["access"].setdefault("filters", []).append("no_query_string")
    config["loggers"]["memberscope"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _h11_protocol_base():
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


class _CoalescingTransport:
    """A transport that holds a response's status line and headers until its body is written, so that a
    short answer leaves in one ``send`` system call instead of two (loopback sends dominate the cost of a
    small request). Interim (1xx) heads are never held; anything held is written before closing and when
    the response completes."""

    def __init__(self, transport):
        self._transport = transport
        self._held = b""

    def write(self, data: bytes) -> None:
        if self._held:
            data, self._held = self._held + data, b""
        elif data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 1"):
            self._held = bytes(data)
            return
        if data:
            self._transport.write(data)

    def flush(self) -> None:
        if self._held:
            data, self._held = self._held, b""
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatewayH11Protocol(_h11_protocol_base()):  # type: ignore[misc]
    """uvicorn's h11 protocol with a deadline on the request head (408, then close), and each response's
    head and body written together (:class:`_CoalescingTransport`)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._head_deadline = float(getattr(self.config, REQUEST_TIMEOUT_ATTR, 10.0))
        self._head_timer: Any = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _CoalescingTransport(transport)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        idle = cycle is None or cycle.response_complete
        if idle and self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_deadline, self._head_timeout)
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not cycle:  # a request head was parsed
            self._head_timer.cancel()
            self._head_timer = None

    def on_response_complete(self) -> None:
        self.transport.flush()
        super().on_response_complete()
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        body = b'{"detail":"request head not received in time"}'
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.transport.close()


def server_config(
    app: Any,
    policy: Policy,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    factory: bool = False,
    **overrides: Any,
):
    """A ``uvicorn.Config`` enforcing ``policy.http`` (see the module docstring)."""
    import uvicorn

    limits = policy.http
    trusted = ",".join(limits.trusted_proxies)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": log_level,
        "factory": factory,
        "http": GatewayH11Protocol,
        "h11_max_incomplete_event_size": int(limits.max_header_bytes),
        "timeout_keep_alive": max(1, int(round(limits.keepalive_seconds))),
        "limit_concurrency": int(limits.max_connections),
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "log_config": log_config(),
        "server_header": False,
    }
    options.update(overrides)
    config = uvicorn.Config(app, **options)
    setattr(config, REQUEST_TIMEOUT_ATTR, float(limits.request_timeout_seconds))  # uvicorn has no slot for it
    return config


def run_server(config) -> None:
    """Serve until interrupted: one process, or ``config.workers`` processes on one socket (as ``uvicorn.run``)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        config.load_app()
        uvicorn.Server(config).run()
