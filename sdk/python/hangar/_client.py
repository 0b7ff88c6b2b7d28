"""The HTTP layer: one _Client per workspace, speaking Hangar's REST API."""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from .exceptions import ServerError

API_PREFIX = "/api/v1"
DEFAULT_URL = "http://127.0.0.1:8265"
DEFAULT_WORKSPACE = "default"
_USER_AGENT = "hangar-python-sdk"


def normalize_url(url):
    """The server URL without a trailing slash or /api/v1."""
    url = url.rstrip("/")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    return url


class HTTPError(Exception):
    """A non-2xx answer: status and the server's {"error": {...}} body."""

    def __init__(self, status, code, message, field=None, hint=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.hint = hint

    def to(self, exc_cls, message=None):
        """The error as the domain exception exc_cls, keeping field and hint."""
        return exc_cls(message or self.message, status_code=self.status, code=self.code,
                       field=self.field, hint=self.hint)


class _Client:
    """Calls one workspace of one server. timeout bounds each call (seconds)."""

    def __init__(self, url, token, workspace, timeout=60):
        self.url = normalize_url(url)
        self.token = token
        self.workspace = workspace
        self.timeout = timeout

    def __repr__(self):
        # Never show the token.
        return "_Client(url={!r}, workspace={!r})".format(self.url, self.workspace)

    def ws_path(self, path):
        return "/workspaces/{}{}".format(urllib.parse.quote(self.workspace, safe=""), path)

    def open(self, method, path, body=None, query=None, data=None, content_type=None, timeout=None, ws=True):
        """Sends a request and returns the open response; raises HTTPError for non-2xx."""
        if ws:
            path = self.ws_path(path)
        url = self.url + API_PREFIX + path
        if query:
            q = {k: v for k, v in query.items() if v is not None}
            if q:
                url += "?" + urllib.parse.urlencode(q)
        headers = {"User-Agent": _USER_AGENT}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if body is not None:
            data = json.dumps(body).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as e:
            raise _http_error(e) from None

    def call(self, method, path, body=None, query=None, **kw):
        """Sends a request and returns the decoded JSON answer (None when empty)."""
        with self.open(method, path, body=body, query=query, **kw) as resp:
            raw = resp.read()
        if not raw:
            return None
        return json.loads(raw)

    def get(self, path, query=None, **kw):
        return self.call("GET", path, query=query, **kw)

    def value(self, path, query=None):
        """GET of a list route: its "value"."""
        return (self.get(path, query) or {}).get("value") or []

    def exists(self, path):
        """HEAD: True for 2xx, False for 404."""
        try:
            self.open("HEAD", path).close()
            return True
        except HTTPError as e:
            if e.status == 404:
                return False
            raise

    def upload_blob(self, data):
        """Stores data as a blob unless the server has it; returns its digest."""
        import hashlib
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.exists("/blobs/" + digest):
            return digest
        got = self.call("POST", "/blobs", data=data, content_type="application/gzip", timeout=max(self.timeout, 600))
        return got["digest"]

    def post_retrying(self, path, body, budget=120.0):
        """POST that retries connection errors (a restarting server) for budget seconds."""
        deadline = time.monotonic() + budget
        delay = 0.5
        while True:
            try:
                return self.call("POST", path, body=body, timeout=30)
            except HTTPError:
                raise
            except OSError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                time.sleep(min(delay, left))
                delay = min(delay * 2, 5.0)


def _http_error(e):
    status = e.code
    try:
        doc = json.loads(e.read() or b"{}")
        err = doc.get("error") or {}
    except (ValueError, OSError):
        err = {}
    msg = err.get("message") or "HTTP {} {}".format(status, e.reason)
    return HTTPError(status, err.get("code") or str(status), msg, err.get("field") or None, err.get("hint") or None)


def raise_server(e):
    """Turns an HTTPError from a call without a domain exception into ServerError."""
    raise e.to(ServerError) from None


def env(name, default=None):
    v = os.environ.get(name)
    return v if v else default
