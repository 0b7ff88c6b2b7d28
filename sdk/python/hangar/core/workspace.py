"""Workspace: which server, which credentials, which workspace."""

import hashlib
import json
import os
import uuid

from .._client import DEFAULT_URL, DEFAULT_WORKSPACE, _Client, normalize_url, HTTPError, raise_server
from ..exceptions import UserErrorException

ENV_URL, ENV_TOKEN, ENV_WORKSPACE = "HANGAR_URL", "HANGAR_TOKEN", "HANGAR_WORKSPACE"


class Workspace:
    """A Hangar workspace on a server (azureml.core.Workspace).

    Workspace(url, token, name) names everything; url=None takes HANGAR_URL,
    then the config file (see from_config), then http://127.0.0.1:8265;
    token=None likewise. The token is never shown by repr.
    """

    def __init__(self, url=None, token=None, name=DEFAULT_WORKSPACE, _timeout=60):
        if url is None or token is None:
            s = _load_settings(None, required=False)
            if url is None:
                url = s["url"]
                if token is None and s.get("token"):
                    token = s["token"]
            elif token is None and s.get("token") and normalize_url(s["url"]) == normalize_url(url):
                token = s["token"]
        self.name = name or DEFAULT_WORKSPACE
        self._client = _Client(url, token, self.name, timeout=_timeout)
        self._config_file = None

    @staticmethod
    def from_config(path=None, auth=None, _logger=None, _file_name=None):
        """The workspace of the CLI's config file {"url", "token", "workspace"}.

        path is a file, or a directory to search; None searches
        ./config.json, ./.hangar/config.json and ~/.hangar/config.json. As in
        the CLI, HANGAR_URL, HANGAR_TOKEN and HANGAR_WORKSPACE each win over
        the file (and a HANGAR_URL naming another server drops the file's
        token). Raises UserErrorException when no config is found.
        """
        if auth is not None:
            raise UserErrorException("auth= is Azure-only; put the token in the config file or HANGAR_TOKEN")
        s = _load_settings(path, required=True, file_name=_file_name)
        ws = Workspace(url=s["url"], token=s.get("token") or "", name=s.get("workspace") or DEFAULT_WORKSPACE)
        ws._config_file = s.get("file")
        print("Workspace {} on {}".format(ws.name, ws._client.url) + (" (from {})".format(ws._config_file) if ws._config_file else ""))
        return ws

    def write_config(self, path=None, file_name=None):
        """Writes the config file (mode 0600: it holds the token) read by from_config."""
        path = path or os.path.join(os.getcwd(), ".hangar")
        os.makedirs(path, mode=0o700, exist_ok=True)
        full = os.path.join(path, file_name or "config.json")
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"url": self._client.url, "token": self._client.token or "", "workspace": self.name}, f, indent=2)
        return full

    def __repr__(self):
        return "Workspace.create(name='{}', url='{}')".format(self.name, self._client.url)

    def __eq__(self, other):
        return isinstance(other, Workspace) and other._client.url == self._client.url and other.name == self.name

    def __hash__(self):
        return hash((self._client.url, self.name))

    @property
    def url(self):
        return self._client.url

    @property
    def _workspace_id(self):
        """A stable id of this workspace on this server, shaped like Azure's GUID."""
        h = hashlib.sha256((self._client.url + "\n" + self.name).encode()).hexdigest()
        return str(uuid.UUID(h[:32]))

    @property
    def location(self):
        return "local"

    @property
    def compute_targets(self):
        """Every compute target by name (azureml's ws.compute_targets)."""
        from .compute import ComputeTarget
        return {c.name: c for c in ComputeTarget.list(self)}

    @property
    def environments(self):
        from .environment import Environment
        return Environment.list(self)

    @property
    def models(self):
        from .model import Model
        out = {}
        for m in Model.list(self):
            out.setdefault(m.name, m)  # newest first
        return out

    @property
    def webservices(self):
        from .webservice import Webservice
        return {s.name: s for s in Webservice.list(self)}

    def get_details(self):
        try:
            version = self._client.get("/version", ws=False)
        except HTTPError as e:
            raise_server(e)
        return {"name": self.name, "id": self._workspace_id, "url": self._client.url, "server": version}


def _read_config(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UserErrorException("config file {}: {}".format(path, e))
    if not isinstance(data, dict):
        raise UserErrorException("config file {}: not a JSON object".format(path))
    data["file"] = path
    return data


def _load_settings(path=None, required=False, file_name=None):
    """Resolves url, token and workspace as the CLI does (client/settings.go)."""
    candidates = []  # (path, foreign)
    if path is not None:
        if os.path.isdir(path):
            candidates = [(os.path.join(path, file_name or "config.json"), False),
                          (os.path.join(path, ".hangar", file_name or "config.json"), False)]
        else:
            candidates = [(path, False)]
    else:
        cwd = os.getcwd()
        candidates = [(os.path.join(cwd, file_name or "config.json"), True),
                      (os.path.join(cwd, ".hangar", "config.json"), False),
                      (os.path.join(os.path.expanduser("~"), ".hangar", "config.json"), False)]
    s = {}
    for p, foreign in candidates:
        try:
            data = _read_config(p)
        except UserErrorException:
            if foreign:
                continue
            raise
        if data is None or (foreign and not data.get("url") and not data.get("token")):
            continue
        s = {k: data.get(k) for k in ("url", "token", "workspace", "file")}
        break
    env_url = os.environ.get(ENV_URL)
    if env_url:
        if s.get("url") and normalize_url(s["url"]) != normalize_url(env_url):
            s = {}  # the file's token belongs to another server
        s["url"] = env_url
    if os.environ.get(ENV_TOKEN):
        s["token"] = os.environ[ENV_TOKEN]
    if os.environ.get(ENV_WORKSPACE):
        s["workspace"] = os.environ[ENV_WORKSPACE]
    if required and not s.get("url"):
        raise UserErrorException(
            "We could not find a config file in: {} (nor is HANGAR_URL set). "
            "Run `hangar login --url URL --token-file FILE`, or pass a path.".format(
                ", ".join(p for p, _ in candidates)))
    s.setdefault("url", None)
    if not s.get("url"):
        s["url"] = DEFAULT_URL
    if not s.get("workspace"):
        s["workspace"] = DEFAULT_WORKSPACE
    return s
