"""The HTTP side of the status page (aiohttp): the page, its JSON API, its event stream, /metrics.

    GET /                          the page (static files from the package: no CDN)
    GET /api/v1/overview           connections, pcontrol's status, the sched server's summary
    GET /api/v1/hosts              `hosts -json` records
    GET /api/v1/tasks              the sched server's `status -json` task rows (when one runs)
    GET /api/v1/jobs?task=&host=&outcome=&state=&offset=&limit=
                                   one page of job rows, newest first, filtered here
    GET /api/v1/jobs/ID            `check job ID -output -json`, with the head and tail of
                                   its stdout and stderr
    GET /api/v1/plots/finished?hours=H    jobs finished per minute by outcome
    GET /api/v1/plots/runtimes?task=T     a task's run times
    GET /api/v1/syncs              `sync runs -json`: the last synchronized runs, with each
                                   target's start offset (start_ms)
    GET /api/v1/events             server-sent events: changed job rows, "other", "resync"
    GET /metrics                   Prometheus text format (prometheus_client)

Every JSON answer carries `schema_version`; records are the same as `-json` at the prompt.
Only GET and HEAD are routed: no URL changes anything. Everything is answered from the mirror
in this process, except a job's detail (one request to pcontrol).
"""

from __future__ import annotations

import importlib.resources
import logging
import time
from typing import Any

from aiohttp import web

from .access import COOKIE, token_matches
from .feeds import ControllerFeed, SchedFeed
from .live import Fanout, TooManyStreams
from .metrics import Metrics
from .mirror import MAX_PAGE, JobFilter, JobMirror

log = logging.getLogger(__name__)

__all__ = ["SCHEMA_VERSION", "WebState", "make_app"]

#: Version of the JSON API's shapes; bumped when a field changes meaning or goes away.
SCHEMA_VERSION = 1
#: Lines of a job's output shown from its start and from its end.
HEAD_LINES = 20
TAIL_LINES = 20
#: Longest line of output shown (longer ones are cut, saying so).
LINE_CHARS = 2000

STATIC = importlib.resources.files("pweb") / "static"
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


class WebState:
    """What the handlers read: the mirror, the feeds, the metrics, the fan-out."""

    def __init__(self, mirror: JobMirror, controller: ControllerFeed, sched: SchedFeed | None,
                 metrics: Metrics, fanout: Fanout, token: str | None):
        self.mirror = mirror
        self.controller = controller
        self.sched = sched
        self.metrics = metrics
        self.fanout = fanout
        self.token = token


STATE = web.AppKey("state", WebState)


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(dict(data, schema_version=SCHEMA_VERSION), status=status)


@web.middleware
async def _token_gate(request: web.Request, handler: Any) -> web.StreamResponse:
    token = request.app[STATE].token
    if token is None:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    given = header[len("Bearer "):] if header.startswith("Bearer ") else None
    from_query = request.query.get("token")
    for candidate in (given, from_query, request.cookies.get(COOKIE)):
        if token_matches(token, candidate):
            response = await handler(request)
            if from_query is not None and candidate is from_query and not response.prepared:
                response.set_cookie(COOKIE, from_query, httponly=True, samesite="Strict")
            return response
    return web.json_response({"error": "a valid token is needed (Authorization: Bearer "
                                       "TOKEN, or ?token=TOKEN)",
                              "schema_version": SCHEMA_VERSION}, status=401,
                             headers={"WWW-Authenticate": 'Bearer realm="pweb"'})


@web.middleware
async def _read_only_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    if response.prepared:        # the event stream: its headers are gone already
        return response
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'")
    return response


# -- the page ---------------------------------------------------------------------------------

async def _index(request: web.Request) -> web.Response:
    return web.Response(body=(STATIC / "index.html").read_bytes(), content_type="text/html")


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    suffix = name[name.rfind("."):] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in STATIC_TYPES:
        raise web.HTTPNotFound()
    item = STATIC / name
    if not item.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=item.read_bytes(), content_type=STATIC_TYPES[suffix])


# -- the API ----------------------------------------------------------------------------------

async def _overview(request: web.Request) -> web.Response:
    state = request.app[STATE]
    feed = state.controller
    sched = state.sched
    return _json({
        "controller": {"address": str(feed.address), "connected": feed.connected,
                       "error": feed.error, "status": feed.status},
        "sched": {"running": sched is not None and sched.status is not None,
                  "error": sched.error if sched is not None else "not followed",
                  "summary": (sched.status or {}).get("summary") if sched is not None else None,
                  "member": sched.member if sched is not None else ""},
        "jobs": state.mirror.counts(),
        "hosts": sorted(state.mirror.hosts),
        "version": state.mirror.version,
        "now": time.time(),
    })


async def _hosts(request: web.Request) -> web.Response:
    mirror = request.app[STATE].mirror
    return _json({"hosts": [mirror.hosts[name] for name in sorted(mirror.hosts)]})


async def _tasks(request: web.Request) -> web.Response:
    sched = request.app[STATE].sched
    status = sched.status if sched is not None else None
    return _json({"running": status is not None,
                  "error": sched.error if sched is not None else "not followed",
                  "tasks": (status or {}).get("tasks", []),
                  "summary": (status or {}).get("summary"),
                  "member": sched.member if sched is not None else ""})


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: expected a whole number, got {text!r}") from None
    return max(low, min(high, value))


def _filter(request: web.Request) -> JobFilter:
    def word(name: str) -> str | None:
        value = request.query.get(name, "").strip()
        return value or None

    state = word("state")
    outcome = word("outcome")
    return JobFilter(task=word("task"), host=word("host"),
                     outcome=outcome.upper() if outcome else None,
                     state=state.upper() if state else None)


async def _jobs(request: web.Request) -> web.Response:
    state = request.app[STATE]
    where = _filter(request)
    page = state.mirror.page(where, _int_param(request, "offset", 0, 0, 10 ** 9),
                             _int_param(request, "limit", 50, 1, MAX_PAGE))
    return _json({"jobs": page.rows, "total": page.total, "offset": page.offset,
                  "limit": page.limit, "filter": {k: v for k, v in vars(where).items() if v},
                  "version": state.mirror.version})


def head_and_tail(text: str, head: int = HEAD_LINES, tail: int = TAIL_LINES) -> dict[str, Any]:
    """The first `head` and last `tail` lines of `text`, and how many lines lie between."""
    lines = [line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " [...]"
             for line in text.splitlines()]
    if len(lines) <= head + tail:
        return {"head": lines, "tail": [], "skipped": 0, "lines": len(lines)}
    return {"head": lines[:head], "tail": lines[-tail:], "skipped": len(lines) - head - tail,
            "lines": len(lines)}


async def _job(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        job_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text="a job id is a whole number") from None
    record = await state.controller.job_detail(job_id)
    if record is None:
        return _json({"error": f"no job {job_id}"}, status=404)
    record = dict(record)
    output = {stream: head_and_tail(record.pop(stream, "") or "") for stream in ("stdout", "stderr")}
    return _json({"job": record, "output": output})


async def _plot_finished(request: web.Request) -> web.Response:
    hours = _int_param(request, "hours", 3, 1, 48)
    return _json(request.app[STATE].mirror.finished_per_minute(time.time(), hours))


async def _plot_runtimes(request: web.Request) -> web.Response:
    task = request.query.get("task", "")
    if not task:
        raise web.HTTPBadRequest(text="task: which task's run times")
    return _json({"task": task, "points": request.app[STATE].mirror.run_times(task)})


async def _syncs(request: web.Request) -> web.Response:
    return _json({"runs": request.app[STATE].controller.syncs})


async def _events(request: web.Request) -> web.StreamResponse:
    fanout = request.app[STATE].fanout
    try:
        lines = fanout.stream()
        first = await lines.__anext__()
    except TooManyStreams as exc:
        return _json({"error": str(exc)}, status=503)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
    await response.prepare(request)
    try:
        await response.write(first)
        async for line in lines:
            await response.write(line)
    except (ConnectionResetError, RuntimeError):   # the page went away
        pass
    finally:
        await lines.aclose()
    return response


async def _metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[STATE].metrics.render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


def make_app(state: WebState) -> web.Application:
    app = web.Application(middlewares=[_read_only_headers, _token_gate])
    app[STATE] = state
    app.router.add_get("/", _index)
    app.router.add_get("/favicon.ico", _no_icon)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/api/v1/overview", _overview)
    app.router.add_get("/api/v1/hosts", _hosts)
    app.router.add_get("/api/v1/tasks", _tasks)
    app.router.add_get("/api/v1/jobs", _jobs)
    app.router.add_get("/api/v1/jobs/{id}", _job)
    app.router.add_get("/api/v1/plots/finished", _plot_finished)
    app.router.add_get("/api/v1/plots/runtimes", _plot_runtimes)
    app.router.add_get("/api/v1/syncs", _syncs)
    app.router.add_get("/api/v1/events", _events)
    app.router.add_get("/metrics", _metrics)
    return app
