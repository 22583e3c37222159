"""A stand-in for the Hugging Face Hub: the few HTTP endpoints ``huggingface_hub`` calls to push and pull.

This is a test double, not a Hub: no accounts, no LFS, no git. It keeps model repositories in memory (and
optionally loads a folder of ``org/name`` directories at start), one commit per push, branches as revisions.
It answers, as the Hub does for ``HfApi.create_repo``, ``create_branch``, ``upload_folder`` (preupload +
NDJSON commit, every file sent inline as base64: ``uploadMode: regular``), ``repo_info``, ``list_repo_tree``,
``snapshot_download`` and ``hf_hub_download``:

=======  ==============================================  =====================================================
method   path                                            answer
=======  ==============================================  =====================================================
POST     /api/repos/create                               ``{"url", "name"}``; 409 when it exists
POST     /api/validate-yaml                              no errors (the card's YAML is not checked here)
POST     /api/models/{repo}/branch/{branch}              new branch at the head of ``main``
POST     /api/models/{repo}/preupload/{rev}              every file ``regular``
POST     /api/models/{repo}/commit/{rev}                 applies NDJSON ``header``/``file``/``deletedFile``
GET      /api/models/{repo}[/revision/{rev}]             ``{"id", "sha", "siblings", "private"}``
GET      /api/models/{repo}/tree/{rev}                   files with ``oid`` (git blob SHA-1) and ``size``
HEAD/GET /{repo}/resolve/{rev}/{path}                    bytes, ``ETag``, ``X-Repo-Commit``
=======  ==============================================  =====================================================

Unknown repos and revisions answer 404 with ``X-Error-Code: RepoNotFound`` / ``RevisionNotFound``, as the Hub
does, so ``huggingface_hub`` raises its usual errors. With ``--token T`` every write needs
``Authorization: Bearer T`` (401 otherwise). Run: ``python tests/hub/hub_test_server.py --port 0`` prints
``http://127.0.0.1:PORT`` on its first line; point ``HF_ENDPOINT`` at it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["HubState", "make_server", "serve_in_thread", "main"]


def _blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubState:
    """Repositories: ``repo_id -> {"private", "branches": {name: sha}, "commits": {sha: {path: bytes}}}``."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token  # required bearer token for writes (None: any)
        self.repos: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (method, path) log, for tests

    def create(self, repo_id: str, private: bool = False) -> bool:
        with self.lock:
            if repo_id in self.repos:
                return False
            sha = hashlib.sha1(f"init {repo_id} {time.time_ns()}".encode()).hexdigest()
            self.repos[repo_id] = {"private": private, "branches": {"main": sha}, "commits": {sha: {}}}
            return True

    def resolve(self, repo_id: str, rev: str) -> str | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return None
        if rev in repo["branches"]:
            return repo["branches"][rev]
        return rev if rev in repo["commits"] else None

    def commit(self, repo_id: str, branch: str, adds: dict[str, bytes], deletes: list[str], msg: str) -> str:
        with self.lock:
            repo = self.repos[repo_id]
            files = dict(repo["commits"][repo["branches"][branch]])
            files.update(adds)
            for p in deletes:
                files.pop(p, None)
            sha = hashlib.sha1(f"{msg} {time.time_ns()} {sorted(files)}".encode()).hexdigest()
            repo["commits"][sha] = files
            repo["branches"][branch] = sha
            return sha

    def load_folder(self, root: Path) -> None:
        """Add every ``root/org/name`` directory as a repo with one commit on ``main``."""
        for d in sorted(p for p in root.glob("*/*") if p.is_dir()):
            rid = f"{d.parent.name}/{d.name}"
            self.create(rid)
            files = {str(f.relative_to(d)): f.read_bytes() for f in d.rglob("*") if f.is_file()}
            self.commit(rid, "main", files, [], "load")


def _handler(state: HubState):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def _send(self, code: int, body: bytes = b"", headers: dict | None = None, ctype="application/json"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, code: int, obj, headers=None):
            self._send(code, json.dumps(obj).encode(), headers)

        def _err(self, code: int, err: str, msg: str):
            self._json(code, {"error": msg}, {"X-Error-Code": err, "X-Error-Message": msg})

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _authorised(self) -> bool:
            if state.token is None:
                return True
            if self.headers.get("Authorization", "") == f"Bearer {state.token}":
                return True
            self._err(401, "Unauthorized", "Invalid credentials in Authorization header")
            return False

        def _parse(self):
            path = unquote(urlparse(self.path).path)
            state.requests.append((self.command, path))
            return path.strip("/").split("/")

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            parts = self._parse()
            if len(parts) >= 3 and parts[:2] == ["api", "models"]:
                rid = "/".join(parts[2:4])
                rest = parts[4:]
                rev = rest[1] if len(rest) >= 2 else "main"
                if rid not in state.repos:
                    return self._err(404, "RepoNotFound", f"Repository {rid} not found")
                sha = state.resolve(rid, rev)
                if sha is None:
                    return self._err(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                files = state.repos[rid]["commits"][sha]
                if rest[:1] == ["tree"]:
                    sub = "/".join(rest[2:])
                    items = [
                        {"type": "file", "path": p, "size": len(b), "oid": _blob_oid(b)}
                        for p, b in sorted(files.items())
                        if not sub or p.startswith(sub + "/")
                    ]
                    return self._json(200, items)
                siblings = [{"rfilename": p, "size": len(b)} for p, b in sorted(files.items())]
                return self._json(
                    200,
                    {
                        "id": rid,
                        "modelId": rid,
                        "sha": sha,
                        "siblings": siblings,
                        "private": False,
                        "tags": [],
                    },
                )
            if len(parts) >= 5 and parts[2] == "resolve":
                rid, rev, fpath = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                if rid not in state.repos:
                    return self._err(404, "RepoNotFound", f"Repository {rid} not found")
                sha = state.resolve(rid, rev)
                if sha is None:
                    return self._err(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                data = state.repos[rid]["commits"][sha].get(fpath)
                if data is None:
                    return self._err(404, "EntryNotFound", f"{fpath} does not exist on {rev}")
                etag = f'"{_blob_oid(data)}"'
                return self._send(200, data, {"ETag": etag, "X-Repo-Commit": sha}, "application/octet-stream")
            return self._err(404, "NotFound", f"no route for GET {self.path}")

        def do_POST(self):
            parts = self._parse()
            body = self._body()
            if not self._authorised():
                return None
            if parts == ["api", "validate-yaml"]:
                return self._json(200, {"errors": [], "warnings": []})
            if parts == ["api", "repos", "create"]:
                req = json.loads(body or b"{}")
                rid = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
                if not state.create(rid, bool(req.get("private"))):
                    return self._json(409, {"error": "You already created this model repo", "url": rid})
                return self._json(200, {"url": f"http://{self.headers.get('Host')}/{rid}", "name": rid})
            if len(parts) >= 6 and parts[:2] == ["api", "models"]:
                rid, op, rev = "/".join(parts[2:4]), parts[4], "/".join(parts[5:])
                if rid not in state.repos:
                    return self._err(404, "RepoNotFound", f"Repository {rid} not found")
                if op == "branch":
                    with state.lock:
                        br = state.repos[rid]["branches"]
                        br.setdefault(rev, br["main"])
                    return self._json(200, {})
                if state.resolve(rid, rev) is None or rev not in state.repos[rid]["branches"]:
                    return self._err(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                if op == "preupload":
                    files = json.loads(body)["files"]
                    modes = [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                    ]
                    return self._json(200, {"files": modes, "commitOid": state.repos[rid]["branches"][rev]})
                if op == "commit":
                    adds, deletes, msg = {}, [], ""
                    for line in body.decode().splitlines():
                        if not line.strip():
                            continue
                        item = json.loads(line)
                        key, val = item["key"], item["value"]
                        if key == "header":
                            msg = val.get("summary", "")
                        elif key == "file":
                            adds[val["path"]] = base64.b64decode(val["content"])
                        elif key in ("deletedFile", "deletedFolder"):
                            deletes.append(val["path"])
                        else:
                            return self._err(
                                400, "BadRequest", f"unsupported commit entry {key!r} (no LFS here)"
                            )
                    sha = state.commit(rid, rev, adds, deletes, msg)
                    host = self.headers.get("Host")
                    return self._json(
                        200,
                        {"commitUrl": f"http://{host}/{rid}/commit/{sha}", "commitOid": sha, "success": True},
                    )
            return self._err(404, "NotFound", f"no route for POST {self.path}")

    return H


def make_server(state: HubState, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server bound to ``host:port`` (0: a free port) serving ``state``."""
    srv = ThreadingHTTPServer((host, port), _handler(state))
    srv.daemon_threads = True
    return srv


def serve_in_thread(state: HubState | None = None) -> tuple[ThreadingHTTPServer, str]:
    """Start a server on a free local port in a daemon thread; returns ``(server, endpoint_url)``."""
    srv = make_server(state or HubState())
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--token", default=None, help="bearer token required for writes")
    ap.add_argument("--load", type=Path, default=None, help="folder of org/name model directories to serve")
    a = ap.parse_args(argv)
    state = HubState(a.token)
    if a.load is not None:
        state.load_folder(a.load)
    srv = make_server(state, port=a.port)
    print(f"http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
