"""The twin's HTTP server: the Kubernetes API, `/metrics`, and its own `/twin/` fault and clock endpoint."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from console.twin import metrics
from console.twin.clusters import ClusterSet
from console.twin.kubeapi import ApiFault, Response
from console.twin.sim import Twin
from console.twin.store import ApiError


class _Handler(BaseHTTPRequestHandler):
    server: TwinServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, resp: Response) -> None:
        if isinstance(resp.body, (bytes, str)):
            data = resp.body.encode() if isinstance(resp.body, str) else resp.body
        else:
            data = json.dumps(resp.body, separators=(",", ":")).encode()
        self.send_response(resp.code)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        body = self._body()
        twin = self.server.twin
        if not url.path.startswith("/twin/") and self.server.unreachable():
            self.close_connection = True  # a lost cluster: the connection drops with no answer at all
            return
        try:
            if url.path == "/metrics" and self.command == "GET":
                resp = Response(200, metrics.render(twin), "text/plain; version=0.0.4; charset=utf-8")
            elif url.path in ("/healthz", "/readyz", "/livez"):
                resp = Response(200, "ok", "text/plain")
            elif url.path.startswith("/twin/"):
                resp = self._twin(url.path, body)
            else:
                headers = {k.lower(): v for k, v in self.headers.items()}
                resp = twin.api.handle(self.command, url.path, url.query, headers, body)
        except ApiError as e:
            resp = Response(e.code, e.status())
        except (ValueError, KeyError, TypeError) as e:
            resp = Response(400, ApiError(400, "BadRequest", f"bad request: {e}").status())
        self._send(resp)

    def _twin(self, path: str, body: bytes) -> Response:
        twin, method = self.server.twin, self.command
        if path == "/twin/faults" or path.startswith("/twin/faults/"):
            return _faults(self.server.clusters or ClusterSet({"": twin}), twin, method, path, body)
        if path == "/twin/api-faults":
            return _api_faults(twin, method, body)
        if path == "/twin/clock":
            return _clock(twin, method, body)
        raise ApiError(404, "NotFound", f"no twin endpoint {method} {path}")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class TwinServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        twin: Twin,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
        clusters: ClusterSet | None = None,
    ):
        """`clusters`: the twins of the fleet's other clusters, when `twin` is one (its faults reach them)."""
        super().__init__((host, port), _Handler)
        self.twin, self.verbose, self.clusters = twin, verbose, clusters
        twin.api.server_address = f"{host}:{self.server_port}"
        self._thread: threading.Thread | None = None

    def use(self, twin: Twin) -> None:
        """Serve `twin` instead (one continued from a kept history); before `start`."""
        twin.api.server_address = self.twin.api.server_address
        self.twin = twin

    def unreachable(self) -> bool:
        """Whether `cluster_down` holds this server's cluster now."""
        twin = self.twin
        if not twin.cluster_name:
            return False
        with twin.lock:
            return twin.is_lost(twin.clock.now())

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]!s}:{self.server_port}"

    def start(self) -> None:
        self.twin.start()
        self._thread = threading.Thread(target=self.serve_forever, name="twin-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.twin.stop()


def _faults(clusters: ClusterSet, here: Twin, method: str, path: str, body: bytes) -> Response:
    """Every cluster's faults; a new one to the cluster it names (else the one asked), an end to its owner's."""
    if path == "/twin/faults" and method == "GET":
        faults = []
        for twin in clusters.all():
            with twin.lock:
                faults += [f.as_json() for f in twin.faults.faults.values()]
        return Response(200, {"now": here.clock.now().isoformat(), "faults": faults})
    if path == "/twin/faults" and method == "POST":
        spec = json.loads(body or b"{}")
        return Response(201, clusters.for_fault(spec, here).add_fault(spec))
    if path.startswith("/twin/faults/") and method == "DELETE":
        fault_id = path.rsplit("/", 1)[1]
        twin = clusters.with_fault(fault_id)
        with twin.lock:
            fault = twin.faults.end(fault_id, twin.clock.now())
            twin.tick()
            return Response(200, fault.as_json())
    raise ApiError(404, "NotFound", f"no twin endpoint {method} {path}")


def _api_faults(twin: Twin, method: str, body: bytes) -> Response:
    # Errors the Kubernetes API answers with next: `{"method": "PATCH", "path": "configmaps",
    # "code": 409, "count": 1}`; DELETE clears them.
    with twin.lock:
        if method == "POST":
            twin.api.faults.append(ApiFault.parse(json.loads(body or b"{}")))
        elif method == "DELETE":
            twin.api.faults.clear()
        return Response(200, {"faults": [vars(f) for f in twin.api.faults]})


def _clock(twin: Twin, method: str, body: bytes) -> Response:
    with twin.lock:
        if method == "POST":
            spec = json.loads(body or b"{}")
            if "speed" in spec:
                speed = float(spec["speed"])
                if speed < 0:
                    raise ApiError(422, "Invalid", "speed: must be >= 0")
                twin.clock.set_speed(speed)
            if "advance_s" in spec:
                twin.clock.advance(float(spec["advance_s"]))
            twin.tick()
        segments = [{"wall": w, "sim": sim.isoformat(), "speed": v} for w, sim, v in twin.clock.segments]
        return Response(200, {"now": twin.clock.now().isoformat(), "speed": twin.clock.speed, "segments": segments})
