"""A real HTTP model server on 127.0.0.1 (stdlib ThreadingHTTPServer) for the red-team tests.

``POST /<mode>`` with ``{"instances": [...]}`` answers ``{"predictions": [...]}`` through the
post-processor of ``mode`` (``full``, ``top1``, ``round1``, ``label``, ``logits``). Query
parameters script failures: ``?fail_after=N&fail=401|html|429|path`` answers the first ``N``
requests normally and then fails as told; ``?limit=N`` answers 429 with ``Retry-After: 1`` to every
request after the first ``N`` within one second; ``/auth`` needs ``Authorization: Bearer KEY``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

from memberscope.targets.postprocess import parse_postprocessors
from memberscope.targets.wire import to_predictions

MODES = {"full": "", "top1": "top-k:1", "round1": "round:1", "label": "label-only", "logits": None, "auth": ""}
API_KEY = "test-key-123"


class ModelServer:
    """Serves ``predict_proba(X) -> (n, n_classes)`` until :meth:`close`."""

    def __init__(self, predict_proba, *, log_proba=None):
        self.predict_proba, self.log_proba = predict_proba, log_proba
        self.counts: dict[str, int] = {}
        self.recent: list[float] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _send(self, status, body, content_type="application/json", headers=()):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                url = urlparse(self.path)
                mode, params = url.path.strip("/"), {k: v[0] for k, v in parse_qs(url.query).items()}
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    key = url.path + "?" + url.query
                    server.counts[key] = count = server.counts.get(key, 0) + 1
                    now = time.monotonic()
                    server.recent = [t for t in server.recent if now - t < 1.0] + [now]
                    burst = len(server.recent)
                if "fail_after" in params and count > int(params["fail_after"]):
                    fail = params.get("fail", "401")
                    if fail == "html":
                        return self._send(200, "<html>maintenance</html>", "text/html")
                    if fail == "path":
                        return self._send(200, json.dumps({"outputs": []}))
                    return self._send(int(fail), json.dumps({"error": fail}))
                if "limit" in params and burst > int(params["limit"]):
                    return self._send(429, json.dumps({"error": "slow down"}), headers=[("Retry-After", "1")])
                if mode == "auth" and self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    return self._send(401, json.dumps({"error": "unauthorized"}))
                if mode not in MODES:
                    return self._send(404, json.dumps({"error": f"no route {mode}"}))
                X = np.asarray(body["instances"], dtype=np.float64)
                if mode == "logits":
                    preds = server.log_proba(X).tolist()
                else:
                    post = parse_postprocessors(MODES[mode])
                    preds = to_predictions(post(server.predict_proba(X)), granularity=post.granularity)
                return self._send(200, json.dumps({"predictions": preds}))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, mode: str, **params) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"{self.base}/{mode}" + (f"?{query}" if query else "")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/full"


def one_torch_thread():
    """Generator for a module fixture: tiny models train faster on one thread (and do not oversubscribe).

    Covers torch and the OpenMP/BLAS pools of scikit-learn (gradient boosting took 280 s instead of 3 s
    with its threads spinning on a loaded 2-core machine).
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)
