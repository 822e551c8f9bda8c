"""The web app's HTTP layer: a Starlette app over a `walkcover.server.workspace.Workspace`, run
by uvicorn on 127.0.0.1.

Safe by default:

- it binds 127.0.0.1 (another ``host`` needs ``allow_remote=True``, and `check_host` says so);
- every request, the page included, carries the random token of the URL printed at start
  (``?token=`` for the page, the ``X-Walkcover-Token`` header for the JSON API): 403 otherwise;
  a request for another host name than the one bound is refused (400), against DNS rebinding;
- no request names a file: saved scenarios are named by their slug (letters, digits, ``-``);
- request bodies are limited to `MAX_BODY_BYTES` (413 past it);
- the page is one document with Leaflet and the app's script inlined, under a
  Content-Security-Policy that runs only those scripts (by their SHA-256 hashes, as the maps'
  ``_with_csp`` does) and connects only to this server; nothing is fetched from outside.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hashlib
import json
import logging
import math
import re
import secrets
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from walkcover._errors import OutputExistsError, WalkcoverError
from walkcover._escape import html_text, js_value
from walkcover.scenario import ScenarioError
from walkcover.server.workspace import NotFoundError, NotReadyError, ServeError, Workspace

log = logging.getLogger(__name__)

#: Largest request body accepted (an edit is under 200 bytes; a name at most 200 characters).
MAX_BODY_BYTES = 16 * 1024
#: Digits past which a JSON whole number is read as infinite (`_whole`): no request takes one.
MAX_INT_DIGITS = 400
#: The header the page's JSON requests carry the token in.
TOKEN_HEADER = "x-walkcover-token"
#: Host names that reach only this machine.
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: The seconds the siting optimiser may search for "suggest" (the planner waits for it).
SUGGEST_TIME_LIMIT_S = 20.0

_STATIC = resources.files("walkcover.server") / "static"
_ASSETS = resources.files("walkcover") / "_assets"
#: Files the page inlines from the shipped assets: Leaflet, and the district map's script, whose
#: decoder of packed geometry (`walkcover.unpack`) and street layer (``L.WalkcoverLines``) draw the
#: homes and streets the JSON API sends packed (`walkcover.presentation.web_map.pack_geometry`).
_ASSET_FILES = {
    "leaflet.js": _ASSETS / "leaflet" / "leaflet.js",
    "leaflet.css": _ASSETS / "leaflet" / "leaflet.css",
    "district_map.js": _ASSETS / "walkcover" / "district_map.js",
}


def check_host(host: str, *, allow_remote: bool) -> str:
    """`host` if the app may bind it: a loopback address, or any with `allow_remote`.

    Raises
    ------
    ServeError
        Another host without `allow_remote`.
    """
    if not isinstance(host, str) or not host.strip():
        raise ServeError(f"host={host!r}: give an address to listen on, e.g. 127.0.0.1")
    host = host.strip()
    if host not in LOOPBACK and not allow_remote:
        raise ServeError(
            f"--host {host!r} would let other machines reach the app (and its token-protected "
            "edits): leave --host out to listen on 127.0.0.1 only, or add --allow-remote if you "
            "mean it"
        )
    return host


def _csp_hash(body: str) -> str:
    digest = hashlib.sha256(body.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


@cache
def _static(name: str) -> str:
    path = _ASSET_FILES.get(name, _STATIC / name)
    return path.read_text(encoding="utf-8")


def page(boot: dict[str, Any]) -> tuple[str, str]:
    """The app's page and its Content-Security-Policy.

    `boot` (the page's labels and limits) reaches the script as a JavaScript literal
    (`walkcover._escape.js_value`); the title as HTML text (`html_text`). Scripts run only by
    their hashes: one a name smuggled into the page would carry does not run.
    """
    scripts = [
        _static("leaflet.js"),
        _static("district_map.js"),
        "var WALKCOVER_BOOT = " + js_value(boot) + ";",
        _static("app.js"),
    ]
    title = html_text(boot.get("title", "walkcover"))
    body = _static("index.html")
    html = (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{title}</title>"
        f"<style>{_static('leaflet.css')}</style><style>{_static('app.css')}</style>"
        f"</head><body>{body}"
        + "".join(f"<script>{s}</script>" for s in scripts)
        + "</body></html>"
    )
    hashes = " ".join(
        sorted({_csp_hash(s) for s in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)})
    )
    policy = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; connect-src 'self'; base-uri 'none'; "
        "form-action 'none'"
    )
    # the same policy in the page (kept when it is saved) and, with what only a header can say
    # (no framing by other sites), in the response's header
    meta = f'<meta http-equiv="Content-Security-Policy" content="{html_text(policy)}">'
    head = html.index("<head>") + len("<head>")
    return html[:head] + meta + html[head:], policy + "; frame-ancestors 'none'"


#: Labels the page shows, Chinese and English together (as the maps and reports do).
LABELS = {
    "district": "区 · District",
    "standard": "标准 · Standard",
    "open": "打开 · Open",
    "loading": "正在计算 · Measuring",
    "loading_district": "正在载入区 · Loading the district…",
    "walk": "步行覆盖居民 · Residents within walking distance",
    "official": "官方圆形覆盖 · Official circle figure",
    "residents": "居民 · Residents",
    "covered": "覆盖居民 · Residents covered",
    "target": "目标 · Target",
    "run": "现状 · in the run",
    "gained": "新增覆盖 · Newly covered",
    "add": "添加设施（点击地图）· Add a site (click the map)",
    "adding": "点击地图放置设施 · Click the map to place the site",
    "undo": "撤销 · Undo",
    "suggest": "建议选址 · Suggest sites",
    "sites": "新增设施 · Sites added",
    "no_sites": "尚无新增设施 · No site added yet",
    "delete": "删除 · Delete",
    "close": "假设关闭 · What if it closes",
    "closed": "已关闭 · closed",
    "existing": "现有设施 · Existing facility",
    "save": "保存 · Save",
    "name": "方案名称 · Scenario name",
    "saved": "已保存方案 · Saved scenarios",
    "load": "载入 · Load",
    "compare": "对比 · Compare",
    "compare_a": "方案 A · Scenario A",
    "compare_b": "方案 B · Scenario B",
    "current": "当前方案 · current scenario",
    "replace": "已有同名方案，是否替换？ · A scenario of this name exists: replace it?",
    "snap": "接入点 · Snap point on the street",
    "gap": "缺口 · Gap",
    "gaps": "缺口（现状）· Gaps in the run",
    "homes": "住宅 · Homes",
    "serves": "服务居民 · Residents served",
    "facilities": "设施 · Facilities",
    "closed_count": "关闭 · closed",
    "added_count": "新增 · added",
    "legend": "图例 · Legend",
    "error": "错误 · Error",
    "figure": "指标 · Figure",
    "no_token": "缺少令牌 · The link's token is missing: open the URL walkcover serve printed",
    "export": "导出到报告 · Export to report",
    "exported": "已导出，运行 · Exported; now run",
    "replace_export": "该区已有此标准的导出设施，是否替换？ · Sites of this standard were exported "
    "for the district already: replace them?",
    "synced": "另一标签页已修改此方案 · Updated by another tab",
    "gone": "此方案已不在服务器上 · This scenario is no longer open on the server",
}
#: Seconds between the page's checks of its scenario's version (another tab's edits).
POLL_S = 2.0


class _TooLargeError(Exception):
    """A request body over `MAX_BODY_BYTES` (HTTP 413)."""


async def _json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, read up to `MAX_BODY_BYTES`.

    Raises
    ------
    _TooLargeError
        A longer body (HTTP 413).
    ServeError
        A body that is not a JSON object: not UTF-8 JSON, or nested deeper than the parser
        goes. (A number too long to read, NaN or Infinity is read as a float the edit's own
        checks refuse, naming the field.)
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise _TooLargeError
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLargeError
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        return {}
    try:
        doc = json.loads(raw.decode("utf-8"), parse_int=_whole)
    except RecursionError:
        raise ServeError(
            'the request body nests too deep: send a flat JSON object, e.g. {"op": "undo"}'
        ) from None
    except UnicodeDecodeError:
        raise ServeError("the request body is not JSON (not UTF-8): send a JSON object") from None
    except (ValueError, OverflowError) as exc:  # JSONDecodeError, and any number still refused
        reason = " ".join(str(exc).split())[:120]
        raise ServeError(
            f"the request body is not JSON walkcover reads ({reason}): send a JSON object with "
            "finite numbers of usual length"
        ) from None
    if not isinstance(doc, dict):
        raise ServeError('the request body must be a JSON object, e.g. {"op": "undo"}')
    return doc


def _whole(text: str) -> int | float:
    """A JSON whole number: an int; one of more than `MAX_INT_DIGITS` digits (larger than any
    request takes, and past what Python reads: 4,300) as an infinity of its sign, which every
    field's check refuses, naming the field (``lon=inf: give a finite number``)."""
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return -math.inf if text.startswith("-") else math.inf
    return int(text)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_HEADERS)


_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Handler = Callable[[Request], Awaitable[Response]]


def make_app(workspace: Workspace, *, token: str, hosts: list[str] | None = None) -> Starlette:
    """The Starlette app serving `workspace`, every request checked for `token`.

    Parameters
    ----------
    workspace
        What the app serves.
    token
        The secret every request must carry (``?token=`` or the ``X-Walkcover-Token`` header).
    hosts
        Host names the requests may name (default: the loopback names); ``["*"]`` for any.
    """
    if not isinstance(token, str) or len(token) < 16:
        raise ServeError("token: give a random secret of at least 16 characters")

    def guarded(fn: Callable[[Request], Awaitable[Any]], *, page_route: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
            if not secrets.compare_digest(given.encode(), token.encode()):
                if page_route:
                    return HTMLResponse(html_text(LABELS["no_token"]), 403, headers=_HEADERS)
                return _error(403, "missing or wrong token: open the URL walkcover serve printed")
            try:
                result = await fn(request)
            except _TooLargeError:
                return _error(413, f"request body over {MAX_BODY_BYTES} bytes")
            except NotReadyError as exc:
                return _error(503, str(exc))
            except NotFoundError as exc:
                return _error(404, str(exc))
            except OutputExistsError as exc:
                return _error(409, str(exc))
            except (ServeError, ScenarioError, WalkcoverError) as exc:
                return _error(400, str(exc))
            except OSError as exc:  # the --out folder (or the temporary one) cannot be written
                from walkcover.presentation.outputs import failure_reason

                log.warning("walkcover serve: %s %s: %s", request.method, request.url.path, exc)
                full = exc.errno == errno.ENOSPC
                why = failure_reason(exc, where=workspace.out)
                return _error(507 if full else 500, f"writing into {workspace.out} failed: {why}")
            except Exception:
                log.exception("walkcover serve: %s %s failed", request.method, request.url.path)
                return _error(500, "unexpected error; run walkcover serve with -v and report it")
            if isinstance(result, Response):
                return result
            return JSONResponse(result, headers=_HEADERS)

        return endpoint

    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return run_in_threadpool(fn, *args, **kwargs)

    async def index(request: Request) -> Response:
        html, policy = page({"labels": LABELS, "title": "walkcover serve", "poll_s": POLL_S})
        return HTMLResponse(html, headers={**_HEADERS, "Content-Security-Policy": policy})

    async def status(request: Request) -> Any:
        return workspace.status()

    async def meta(request: Request) -> Any:
        return await call(workspace.meta)

    async def open_scenario(request: Request) -> Any:
        body = await _json_body(request)
        return await call(
            workspace.open,
            district_id=body.get("district_id"),
            standard_id=body.get("standard_id"),
            name=body.get("name", "scenario"),
        )

    async def get_state(request: Request) -> Any:
        sid = request.path_params["sid"]
        if request.query_params.get("full") == "1":
            return await call(workspace.full_state, sid)
        return await call(workspace.state, sid, since=request.query_params.get("since"))

    async def version(request: Request) -> Any:
        return workspace.version(request.path_params["sid"])

    async def edit(request: Request) -> Any:
        body = await _json_body(request)
        return await call(workspace.edit, request.path_params["sid"], body)

    async def suggest(request: Request) -> Any:
        body = await _json_body(request)
        return await call(
            workspace.suggest,
            request.path_params["sid"],
            k=body.get("k"),
            time_limit_s=SUGGEST_TIME_LIMIT_S,
            since=body.get("since"),
        )

    async def save(request: Request) -> Any:
        body = await _json_body(request)
        return await call(
            workspace.save,
            request.path_params["sid"],
            name=body.get("name"),
            overwrite=body.get("overwrite", False),
            since=body.get("since"),
        )

    async def export(request: Request) -> Any:
        body = await _json_body(request)
        return await call(
            workspace.export, request.path_params["sid"], overwrite=body.get("overwrite", False)
        )

    async def saved(request: Request) -> Any:
        return {"saved": await call(workspace.saved)}

    async def load(request: Request) -> Any:
        body = await _json_body(request)
        return await call(workspace.load, body.get("slug"))

    async def compare(request: Request) -> Any:
        body = await _json_body(request)
        return await call(workspace.compare, body.get("a"), body.get("b"))

    routes = [
        Route("/", guarded(index, page_route=True)),
        Route("/api/status", guarded(status)),
        Route("/api/meta", guarded(meta)),
        Route("/api/scenarios", guarded(open_scenario), methods=["POST"]),
        Route("/api/scenarios/{sid}", guarded(get_state)),
        Route("/api/scenarios/{sid}/version", guarded(version)),
        Route("/api/scenarios/{sid}/edits", guarded(edit), methods=["POST"]),
        Route("/api/scenarios/{sid}/suggest", guarded(suggest), methods=["POST"]),
        Route("/api/scenarios/{sid}/save", guarded(save), methods=["POST"]),
        Route("/api/scenarios/{sid}/export", guarded(export), methods=["POST"]),
        Route("/api/saved", guarded(saved)),
        Route("/api/saved/load", guarded(load), methods=["POST"]),
        Route("/api/compare", guarded(compare), methods=["POST"]),
    ]
    allowed = hosts if hosts is not None else ["127.0.0.1", "localhost", "[::1]", "::1"]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=allowed),
            Middleware(GZipMiddleware, minimum_size=2048),
        ],
    )


class LocalServer:
    """The app served by uvicorn on `host`:`port` (0: a free port), with a fresh random token.

    ``url`` is the address to open (token included). `run` serves until interrupted (the
    command line); `start` serves on a thread and `stop` ends it (tests, notebooks).

    Raises
    ------
    ServeError
        A host other than 127.0.0.1 without `allow_remote`, or a port that is not 0..65535.
    OSError
        The port cannot be bound (in use).
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        allow_remote: bool = False,
    ) -> None:
        import uvicorn

        self.host = check_host(host, allow_remote=allow_remote)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ServeError(f"--port {port!r}: give a port from 1 to 65535 (0: any free port)")
        self.workspace = workspace
        self.token = secrets.token_urlsafe(24)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((self.host, port))
            # listening from now on: a browser opened on the printed URL waits in the backlog
            # until the server takes it, never "connection refused"
            self.socket.listen(128)
        except OSError:
            self.socket.close()
            raise
        self.port = int(self.socket.getsockname()[1])
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}/?token={self.token}"
        hosts = ["*"] if allow_remote else None
        app = make_app(workspace, token=self.token, hosts=hosts)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Measure (if not yet), and serve until interrupted."""
        self.workspace.start()
        self.server.run(sockets=[self.socket])

    def start(self) -> None:
        """Measure (if not yet), and serve on a thread until `stop`."""
        self.workspace.start()

        def serve() -> None:
            asyncio.run(self.server.serve(sockets=[self.socket]))

        self._thread = threading.Thread(target=serve, name="walkcover-serve", daemon=True)
        self._thread.start()
        for _ in range(200):
            if self.server.started:
                return
            self._thread.join(0.05)
        raise ServeError(f"the server did not start on {self.host}:{self.port}")

    def stop(self) -> None:
        """End a server `start` began."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        with contextlib.suppress(OSError):
            self.socket.close()


@contextlib.contextmanager
def running(workspace: Workspace, **options: Any) -> Iterator[LocalServer]:
    """A `LocalServer` started on a thread for the block (options as for `LocalServer`)."""
    server = LocalServer(workspace, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


__all__ = [
    "LABELS",
    "MAX_BODY_BYTES",
    "POLL_S",
    "TOKEN_HEADER",
    "LocalServer",
    "check_host",
    "make_app",
    "page",
    "running",
]
