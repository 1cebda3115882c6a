"""A local HTTP server that follows Grafana's documented folder, dashboard and search API (status codes and
bodies as the HTTP API reference gives them), for the publisher's tests. Grafana itself cannot run here.

- `Authorization: Bearer <token>`: an unknown or missing token gets 401; a Viewer's write gets 403.
- `GET /api/folders/:uid` 200 or 404; `POST /api/folders` 200, or 409 when the uid exists.
- `GET /api/dashboards/uid/:uid` 200 `{dashboard, meta}` or 404.
- `POST /api/dashboards/db` `{dashboard, folderUid, overwrite, message}`: 200 `{id, uid, url, status, version,
  slug}`; 400 for a missing title or folder; 412 `version-mismatch` when the posted version is not the stored
  one and `overwrite` is false; 412 `name-exists` when another dashboard in the folder has the title.
- `GET /api/search?query=&type=dash-db&folderUIDs=` the hits, as Grafana lists them.
- `POST /api/annotations` `{time, timeEnd?, tags, text, dashboardUID?, panelId?}`: 200 `{message: "Annotation
  added", id}`; `PATCH /api/annotations/:id` `{time?, timeEnd?, tags?, text?}`: 200 `{message: "Annotation
  patched"}`, 404 for an unknown id. Times are epoch milliseconds; tags a list of strings.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@dataclass
class State:
    tokens: dict[str, str]  # token -> role (Admin, Editor, Viewer)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> {dashboard, folderUid, message}
    annotations: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> the annotation as stored
    bodies: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, body) of each write
    log: list[tuple[str, str]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer the next requests with
    # Someone saves this dashboard in the UI just before the next post of it arrives (a race).
    edit_before_post: str | None = None
    next_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def edit(self, uid: str, **changes: Any) -> None:
        """Someone edits a dashboard in Grafana's UI: new content, next version."""
        with self.lock:
            d = self.dashboards[uid]["dashboard"]
            d.update(changes)
            d["version"] += 1


def _annotation_problem(body: dict[str, Any], new: bool) -> str:
    """What Grafana would refuse in an annotation's body, or ""."""
    known = {"time", "timeEnd", "tags", "text", "dashboardUID", "dashboardId", "panelId", "data"}
    if unknown := set(body) - known:
        return f"unknown fields {sorted(unknown)}"
    if new and not str(body.get("text", "")).strip():
        return "Failed to save annotation: text is empty"
    for k in ("time", "timeEnd"):
        if k in body and not (isinstance(body[k], int) and body[k] > 10**12):  # epoch ms, not seconds
            return f"{k} must be epoch milliseconds"
    if new and "time" not in body:
        return "time is required"
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        return "tags must be a list of strings"
    return ""


class FakeGrafana:
    def __init__(self, tokens: dict[str, str]):
        self.state = State(tokens)
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _role(self) -> str | None:
                auth = self.headers.get("Authorization", "")
                return state.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                with state.lock:
                    state.log.append((method, url.path))
                    fail = state.fail_next.pop(0) if state.fail_next else None
                if fail:
                    return self._send(fail, {"message": "Service unavailable"})
                role = self._role()
                if role is None:
                    return self._send(401, {"message": "Unauthorized"})
                body = None
                if method in ("POST", "PATCH"):
                    if role == "Viewer":
                        return self._send(403, {"message": "Access denied"})
                    length = int(self.headers.get("Content-Length", 0))
                    try:
                        body = json.loads(self.rfile.read(length) or b"{}")
                    except ValueError:
                        return self._send(400, {"message": "bad request data"})
                with state.lock:
                    if body is not None:
                        state.bodies.append((method, url.path, body))
                    status, answer = self._route(method, url.path, parse_qs(url.query), body)
                self._send(status, answer)

            def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
                if m := re.fullmatch(r"/api/folders/([^/]+)", path):
                    f = state.folders.get(m.group(1))
                    return (200, f) if f else (404, {"message": "folder not found", "status": "not-found"})
                if path == "/api/folders" and method == "POST":
                    uid = body.get("uid") or f"f{state.next_id}"
                    if uid in state.folders:
                        return 409, {"message": "a folder with the same uid already exists"}
                    state.folders[uid] = {
                        "id": state.next_id, "uid": uid, "title": body.get("title", ""),
                        "url": f"/dashboards/f/{uid}/{_slug(body.get('title', ''))}", "version": 1,
                    }  # fmt: skip
                    state.next_id += 1
                    return 200, state.folders[uid]
                if m := re.fullmatch(r"/api/dashboards/uid/([^/]+)", path):
                    d = state.dashboards.get(m.group(1))
                    if not d:
                        return 404, {"message": "Dashboard not found"}
                    folder = state.folders.get(d["folderUid"], {})
                    meta = {
                        "slug": _slug(d["dashboard"]["title"]), "url": f"/d/{m.group(1)}",
                        "folderUid": d["folderUid"], "folderTitle": folder.get("title", "General"),
                        "version": d["dashboard"]["version"], "canSave": True,
                    }  # fmt: skip
                    return 200, {"dashboard": d["dashboard"], "meta": meta}
                if path == "/api/dashboards/db" and method == "POST":
                    return self._save(body)
                if path == "/api/search":
                    return 200, self._search(query)
                if path == "/api/annotations" and method == "POST":
                    return self._annotate(body)
                if (m := re.fullmatch(r"/api/annotations/(\d+)", path)) and method == "PATCH":
                    return self._patch_annotation(int(m.group(1)), body)
                return 404, {"message": "Not found"}

            def _annotate(self, body: dict[str, Any]) -> tuple[int, Any]:
                problem = _annotation_problem(body, new=True)
                if problem:
                    return 400, {"message": problem}
                aid = state.next_id
                state.next_id += 1
                state.annotations[aid] = {"id": aid, "timeEnd": body["time"], **body}
                return 200, {"message": "Annotation added", "id": aid}

            def _patch_annotation(self, aid: int, body: dict[str, Any]) -> tuple[int, Any]:
                if aid not in state.annotations:
                    return 404, {"message": "Could not find annotation to update"}
                problem = _annotation_problem(body, new=False)
                if problem:
                    return 400, {"message": problem}
                state.annotations[aid].update(body)
                return 200, {"message": "Annotation patched"}

            def _save(self, body: dict[str, Any]) -> tuple[int, Any]:
                dash = dict(body.get("dashboard") or {})
                folder_uid = body.get("folderUid", "")
                if not dash.get("title"):
                    return 400, {"message": "Dashboard title cannot be empty", "status": "empty-name"}
                if folder_uid and folder_uid not in state.folders:
                    return 400, {"message": "folder not found", "status": "not-found"}
                uid = dash.get("uid") or f"auto{state.next_id}"
                existing = state.dashboards.get(uid)
                if existing and state.edit_before_post == uid:
                    existing["dashboard"]["version"] += 1
                    existing["dashboard"]["description"] = "edited in the UI"
                    state.edit_before_post = None
                overwrite = bool(body.get("overwrite"))
                for other_uid, other in state.dashboards.items():
                    same = other["dashboard"]["title"] == dash["title"] and other["folderUid"] == folder_uid
                    if same and other_uid != uid and not overwrite:
                        return 412, {
                            "message": "A dashboard with the same name in the folder already exists",
                            "status": "name-exists",
                        }
                if existing and not overwrite and dash.get("version") != existing["dashboard"]["version"]:
                    return 412, {
                        "message": "The dashboard has been changed by someone else",
                        "status": "version-mismatch",
                    }
                if existing:
                    dash["id"], dash["version"] = existing["dashboard"]["id"], existing["dashboard"]["version"] + 1
                else:
                    dash["id"], dash["version"] = state.next_id, 1
                    state.next_id += 1
                dash["uid"] = uid
                state.dashboards[uid] = {"dashboard": dash, "folderUid": folder_uid, "message": body.get("message")}
                slug = _slug(dash["title"])
                return 200, {
                    "id": dash["id"], "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success",
                    "version": dash["version"], "slug": slug,
                }  # fmt: skip

            def _search(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
                text = query.get("query", [""])[0].lower()
                folders = set(query.get("folderUIDs", []))
                hits = []
                for uid, d in sorted(state.dashboards.items()):
                    title = d["dashboard"]["title"]
                    if text in title.lower() and (not folders or d["folderUid"] in folders):
                        hits.append({"id": d["dashboard"]["id"], "uid": uid, "title": title, "type": "dash-db",
                                     "url": f"/d/{uid}/{_slug(title)}", "folderUid": d["folderUid"]})  # fmt: skip
                return hits

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def posts(self) -> list[str]:
        return [p for m, p in self.state.log if m == "POST"]
