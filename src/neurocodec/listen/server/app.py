"""The MUSHRA web app: a Starlette application over a prepared test folder.

Pages (public, they hold no data): ``/`` the rater app (its link carries the rater's token in
the fragment, ``/#TOKEN``, so the token never reaches a log or a Referer header), ``/admin``
the admin view (``/admin#ADMIN_TOKEN``), ``/static/*``.

API (every request carries ``Authorization: Bearer TOKEN``; a missing or unknown token is 401
and reveals nothing; a rater token only ever reaches that rater's own trials and ratings; the
admin token only the admin routes):

- ``GET  /api/rater``                          who, how far, training done
- ``POST /api/rater/training``                  training finished
- ``GET  /api/rater/trials/{k}``                the current trial (letters, nonce, draft); during
                                                training any trial, without nonce
- ``GET  /api/rater/trials/{k}/audio/{L}``      a stimulus as WAV (``L``: a letter or ``ref``)
- ``PUT  /api/rater/trials/{k}/draft``          slider positions and played letters so far
- ``POST /api/rater/trials/{k}``                ``{"nonce", "ratings": {letter: 0..100}, "played": [...]}``
- ``GET  /api/admin/progress``                  every rater's progress and link

Answers: 400 malformed JSON, 401 bad token, 404 unknown trial or letter, 409 conflict (not the
current trial, wrong nonce, or already submitted: replays land here), 413 body too large, 422
invalid ratings (a score outside 0-100 or not a number, a letter missing or unknown, a stimulus
not played).  Nothing is stored unless the answer is 2xx.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..plan import DB_FILE, LETTERS, PLAN_FILE, Plan, PlanError
from ..prepare import load_secrets
from ..store import Conflict, Store

STATIC = Path(__file__).resolve().parents[1] / "static"
MAX_BODY = 16 * 1024

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TestServer:
    """The test folder's plan, tokens and store behind the routes."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.plan = Plan.load(self.folder)
        sec = load_secrets(self.folder)
        plan_id = hashlib.sha256((self.folder / PLAN_FILE).read_bytes()).hexdigest()[:16]
        self.store = Store(self.folder / DB_FILE, plan_id=plan_id)
        # tokens are looked up by their SHA-256, so the comparison time tells nothing about a token
        self.rater_by_digest = {_digest(t): r for r, t in sec["raters"].items()}
        self.admin_digest = _digest(sec["admin"])
        self.tokens = sec
        self.raters = {r.id: r for r in self.plan.raters}
        missing = set(self.raters) - set(sec["raters"])
        if missing:
            raise PlanError(f"{self.folder / 'secrets.json'} lacks the tokens of raters {sorted(missing)}")

    # -- auth
    @staticmethod
    def _bearer(request: Request) -> str:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing token (Authorization: Bearer ...)")
        return token.strip()

    def rater_of(self, request: Request) -> str:
        rater = self.rater_by_digest.get(_digest(self._bearer(request)))
        if rater is None:
            raise ApiError(401, "unknown token")
        return rater

    def require_admin(self, request: Request) -> None:
        if _digest(self._bearer(request)) != self.admin_digest:
            raise ApiError(401, "unknown token")

    # -- helpers
    def trial_of(self, rater: str, request: Request) -> int:
        try:
            k = int(request.path_params["k"])
        except ValueError:
            raise ApiError(404, "no such trial") from None
        if not 0 <= k < len(self.raters[rater].trials):
            raise ApiError(404, "no such trial")
        return k

    @staticmethod
    async def body(request: Request) -> dict:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            raise ApiError(413, f"request body over {MAX_BODY} bytes")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise ApiError(413, f"request body over {MAX_BODY} bytes")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "body is not JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "body must be a JSON object")
        return data

    @staticmethod
    def letters(n: int) -> list[str]:
        return list(LETTERS[:n])

    def validate(self, data: dict, n: int, final: bool) -> tuple[str, dict[str, float], list[str]]:
        nonce = data.get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise ApiError(422, "'nonce' missing")
        letters = self.letters(n)
        ratings = data.get("ratings", {})
        played = data.get("played", [])
        if not isinstance(ratings, dict):
            raise ApiError(422, "'ratings' must be an object {letter: score}")
        if not isinstance(played, list) or not all(isinstance(p, str) for p in played):
            raise ApiError(422, "'played' must be a list of letters")
        unknown = sorted((set(ratings) | set(played)) - set(letters) - {"ref"})
        if unknown:
            raise ApiError(422, f"unknown letters {unknown}")
        if "ref" in ratings:
            raise ApiError(422, "the open reference is not rated")
        scores = {}
        for letter, v in ratings.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ApiError(422, f"rating of {letter} is not a number")
            if not 0 <= v <= 100:
                raise ApiError(422, f"rating of {letter} is {v}, outside 0-100")
            scores[letter] = float(v)
        if final:
            missing = [x for x in letters if x not in scores]
            if missing:
                raise ApiError(422, f"no rating for {', '.join(missing)}")
            unplayed = [x for x in letters if x not in played]
            if unplayed:
                raise ApiError(422, f"every stimulus must be played before rating (not played: {', '.join(unplayed)})")
        seconds = data.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or not math.isfinite(seconds) or seconds < 0):
            raise ApiError(422, "'seconds' must be a non-negative number")
        return nonce, scores, sorted(set(played))


class SecurityHeaders:
    """ASGI middleware: the headers of :data:`SECURITY_HEADERS` on every answer, ``no-store`` on the API."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    headers.setdefault(k, v)
                if api:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(folder: str | Path) -> Starlette:
    """The Starlette application serving the test in ``folder`` (made by ``listen prepare``)."""
    srv = TestServer(folder)
    plan = srv.plan

    def guarded(fn):
        async def endpoint(request: Request):
            try:
                return await fn(request)
            except ApiError as e:
                return _error(e.status, e.message)
            except Conflict as e:
                return _error(409, str(e))
        return endpoint

    async def run(fn, *args):
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(fn, *args)

    # -- rater
    async def rater_state(request: Request):
        rater = srv.rater_of(request)
        p = await run(srv.store.progress, rater)
        n = len(srv.raters[rater].trials)
        return JSONResponse({"rater": rater, "title": plan.title, "trials": n, "next_trial": p.next_trial,
                             "training_done": p.training_done, "finished": p.next_trial >= n})

    async def training(request: Request):
        rater = srv.rater_of(request)
        await run(srv.store.finish_training, rater)
        return JSONResponse({"training_done": True})

    async def trial(request: Request):
        rater = srv.rater_of(request)
        k = srv.trial_of(rater, request)
        t = srv.raters[rater].trials[k]
        item = plan.item(t.item)
        out = {"trial": k, "trials": len(srv.raters[rater].trials), "letters": srv.letters(len(t.order)),
               "sample_rate": item.sample_rate, "duration_s": item.duration_s}

        def state():  # one trip to the thread pool: progress, then nonce and draft of the current trial
            p = srv.store.progress(rater)
            if not p.training_done or k != p.next_trial:
                return p, None, None
            return p, srv.store.nonce(rater, k), srv.store.draft(rater, k)

        p, nonce, draft = await run(state)
        if not p.training_done:
            out["training"] = True
            return JSONResponse(out)
        if k < p.next_trial:
            raise ApiError(409, f"trial {k + 1} was already submitted")
        if k > p.next_trial:
            raise ApiError(409, f"trial {k + 1} is not the current trial ({p.next_trial + 1})")
        out["nonce"] = nonce
        out["draft"] = draft
        return JSONResponse(out)

    async def audio(request: Request):
        rater = srv.rater_of(request)
        k = srv.trial_of(rater, request)
        t = srv.raters[rater].trials[k]
        letter = request.path_params["letter"]
        letters = srv.letters(len(t.order))
        if letter == "ref":
            cond = "reference"
        elif letter in letters:
            cond = t.order[letters.index(letter)]
        else:
            raise ApiError(404, "no such stimulus")
        p = await run(srv.store.progress, rater)
        if p.training_done and k != p.next_trial:
            raise ApiError(409, f"trial {k + 1} is not the current trial")
        path = srv.folder / plan.stimuli[t.item][cond]["file"]
        return FileResponse(path, media_type="audio/wav",
                            headers={"Cache-Control": "private, no-store"})

    async def draft(request: Request):
        rater = srv.rater_of(request)
        k = srv.trial_of(rater, request)
        data = await srv.body(request)
        n = len(srv.raters[rater].trials[k].order)
        nonce, scores, played = srv.validate(data, n, final=False)
        await run(srv.store.save_draft, rater, k, nonce, {"ratings": scores, "played": played})
        return Response(status_code=204)

    async def submit(request: Request):
        rater = srv.rater_of(request)
        k = srv.trial_of(rater, request)
        data = await srv.body(request)
        t = srv.raters[rater].trials[k]
        nonce, scores, _ = srv.validate(data, len(t.order), final=True)
        letters = srv.letters(len(t.order))
        by_condition = {t.order[i]: (x, scores[x]) for i, x in enumerate(letters)}
        await run(srv.store.submit, rater, k, nonce, t.item, by_condition, data.get("seconds"))
        n = len(srv.raters[rater].trials)
        return JSONResponse({"stored": len(by_condition), "next_trial": k + 1, "finished": k + 1 >= n},
                            status_code=201)

    # -- admin
    async def progress(request: Request):
        srv.require_admin(request)
        prog = await run(srv.store.all_progress)
        rows = []
        for r in plan.raters:
            p = prog.get(r.id)
            rows.append({"rater": r.id, "trials": len(r.trials), "done": p.next_trial if p else 0,
                         "training_done": bool(p and p.training_done),
                         "started_at": p.started_at if p else None, "updated_at": p.updated_at if p else None,
                         "link": "/#" + srv.tokens["raters"][r.id]})
        return JSONResponse({"title": plan.title, "items": len(plan.items), "conditions": len(plan.conditions),
                             "raters": rows})

    async def page(request: Request):
        name = "admin.html" if request.url.path.rstrip("/") == "/admin" else "index.html"
        return FileResponse(STATIC / name, media_type="text/html", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", page), Route("/admin", page),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/rater", guarded(rater_state)),
        Route("/api/rater/training", guarded(training), methods=["POST"]),
        Route("/api/rater/trials/{k}", guarded(trial), methods=["GET"]),
        Route("/api/rater/trials/{k}", guarded(submit), methods=["POST"]),
        Route("/api/rater/trials/{k}/draft", guarded(draft), methods=["PUT"]),
        Route("/api/rater/trials/{k}/audio/{letter}", guarded(audio)),
        Route("/api/admin/progress", guarded(progress)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.test = srv
    return app
