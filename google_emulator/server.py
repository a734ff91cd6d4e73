"""The WSGI application and the threaded HTTP server around it.

One address serves every Google host the console talks to (accounts, oauth2, admin,
chromepolicy) under Google's own paths, plus the control API under ``/_emulator/``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Self

from werkzeug import Request, Response
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

# Importing the API modules registers their handlers.
from google_emulator import control, directory, discovery, oauth_views, policy  # noqa: F401
from google_emulator.api import (
    HANDLERS,
    ApiCall,
    RawJson,
    apply_faults,
    authenticate,
    check_scopes,
    parse_body,
    shape_response,
)
from google_emulator.errors import ApiError, forbidden, not_found
from google_emulator.faults import LoggedRequest, redact
from google_emulator.mutations import apply as apply_mutation
from google_emulator.state import EmulatorConfig, EmulatorState

logger = logging.getLogger("google_emulator")

OAUTH_ROUTES = {
    ("GET", "/o/oauth2/v2/auth"): ("oauth2.authorize", oauth_views.authorize),
    ("GET", "/o/oauth2/auth"): ("oauth2.authorize", oauth_views.authorize),
    ("POST", "/o/oauth2/approval"): ("oauth2.approval", oauth_views.approval),
    ("POST", "/token"): ("oauth2.token", oauth_views.token),
    ("POST", "/revoke"): ("oauth2.revoke", oauth_views.revoke),
}
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return Response(data, status, content_type=JSON_CONTENT_TYPE, headers=headers)


class EmulatorApp:
    """The WSGI callable: routes to OAuth, the control API or a discovery method."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.router = discovery.Router(list(HANDLERS))

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        started = time.monotonic()
        name, response = self.dispatch(request)
        if name is not None:
            self.state.log.record(
                LoggedRequest(
                    time=self.state.clock.now(),
                    method=name,
                    http_method=request.method,
                    path=request.path,
                    params=redact(request.args.to_dict()),
                    status=response.status_code,
                    body=self._logged_body(request),
                    duration_ms=round((time.monotonic() - started) * 1000, 2),
                )
            )
        return response(environ, start_response)

    @staticmethod
    def _logged_body(request: Request) -> Any:
        if request.mimetype == "application/x-www-form-urlencoded":
            return redact(request.form.to_dict())
        raw = request.get_data(cache=True)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw[:200].decode(errors="replace")

    def dispatch(self, request: Request) -> tuple[str | None, Response]:
        if request.path.startswith(control.PREFIX + "/") or request.path == control.PREFIX:
            return None, self.dispatch_control(request)
        oauth_route = OAUTH_ROUTES.get((request.method, request.path))
        if oauth_route is not None:
            name, view = oauth_route
            injected = oauth_views.fault_response(self.state.faults.take(name))
            return name, injected or view(self.state, request)
        resolved = self.router.resolve(request.method, request.path)
        if resolved is None:
            return "unknown", json_response(not_found("Method not found.").body(), 404)
        spec, path_params = resolved
        try:
            return spec.id, self.dispatch_api(request, spec, path_params)
        except ApiError as error:
            return spec.id, json_response(error.body(), error.code, error.headers)

    def dispatch_api(
        self, request: Request, spec: discovery.MethodSpec, path_params: dict[str, str]
    ) -> Response:
        token = authenticate(self.state, request)
        # A grant sees the customer of the account that consented, and only it.
        state = self.state.customer_for_user(token.user)
        params = discovery.parse_parameters(spec, path_params, request.args.to_dict(flat=False))
        if params.get("alt", "json") != "json":
            raise ApiError(400, "Only alt=json is supported by the emulator.", "invalid", "alt", "parameter")
        check_scopes(spec, token)
        if not state.admin_is_admin:
            raise forbidden()
        with state.limits.admit(spec.id, token.client_id, token.user, state.customer["id"]):
            call = ApiCall(state, spec, params, token, parse_body(spec, request))
            apply_faults(state.faults.take(spec.id, params=params), call)
            result = shape_response(spec, params, HANDLERS[spec.id](call))
            for mutation in call.after_response:
                apply_mutation(state, mutation)
            if result is None:
                return Response(b"", 204)
            return json_response(bytes(result) if isinstance(result, RawJson) else result)

    def dispatch_control(self, request: Request) -> Response:
        handler = control.ROUTES.get((request.method, request.path.rstrip("/")))
        if handler is None:
            return json_response({"error": f"no control endpoint {request.method} {request.path}"}, 404)
        if request.method == "GET":
            body: dict[str, Any] = request.args.to_dict()
        else:
            raw = request.get_data()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return json_response({"error": "body must be JSON"}, 400)
        if not isinstance(body, dict):
            return json_response({"error": "body must be a JSON object"}, 400)
        try:
            # ``customer`` (id, domain, admin email or position) aims an endpoint at another customer.
            selector = body.pop("customer", None)
            state = self.state if selector is None else self.state.find_customer(selector)
            return json_response(handler(state, body))
        except (control.ControlError, ValueError, TypeError, KeyError) as error:
            return json_response({"error": str(error)}, 400)


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug prints a line per request; the request log is the place to look instead."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("%s %s", self.requestline, code)


class EmulatorServer:
    """The emulator on a port, in a background thread: what tests and ``python -m google_emulator`` run.

    ``EmulatorServer(devices=100, seed=7).start()`` serves on a free port; ``host`` is the value
    for the console's ``GOOGLE_EMULATOR_HOST``; ``state`` is the live in-memory state.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | Path | None = None,
        **config: Any,
    ) -> None:
        self.bind_host = host
        self.port = port
        self.state_file = Path(state_file) if state_file else None
        self.state = EmulatorState(EmulatorConfig(**config))
        if self.state_file and self.state_file.exists():
            self.state.load_from(self.state_file)
        self.app = EmulatorApp(self.state)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._saver: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def host(self) -> str:
        return f"{self.bind_host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> Self:
        self._server = make_server(
            self.bind_host, self.port, self.app, threaded=True, request_handler=QuietRequestHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="google-emulator", daemon=True
        )
        self._thread.start()
        if self.state_file:
            self._saver = threading.Thread(
                target=self._save_periodically, name="google-emulator-saver", daemon=True
            )
            self._saver.start()
        return self

    def serve_forever(self) -> None:
        """Block until Ctrl-C or SIGTERM (``start()`` first, or this starts the server)."""
        if self._thread is None:
            self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._saver is not None:
            self._saver.join(timeout=5)
        if self.state_file:
            self.state.save_to(self.state_file)
        self._server = self._thread = self._saver = None

    def reset(self, **overrides: Any) -> None:
        self.state.reset(**overrides)

    def _save_periodically(self) -> None:
        """Save within two seconds of a change, so a demo killed hard loses almost nothing."""
        assert self.state_file is not None
        saved = self.state.all_changes
        while not self._stopping.wait(2.0):
            if self.state.all_changes != saved:
                saved = self.state.all_changes
                self.state.save_to(self.state_file)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
