"""Webservice: a deployed model service (azureml.core.webservice.Webservice)."""

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from ..._client import HTTPError
from ...exceptions import WebserviceException, not_supported


def _q(s):
    return urllib.parse.quote(s, safe="")


class Webservice:
    """A service serving models over HTTP. Webservice(workspace, name) loads it
    as its class (LocalWebservice for the local target), or raises
    WebserviceException("WebserviceNotFound: …")."""

    _webservice_type = None

    def __new__(cls, workspace=None, name=None, **kwargs):
        if cls is Webservice and workspace is not None and name is not None:
            from .local import LocalWebservice
            doc = kwargs.get("_doc") or _get(workspace, name)
            obj = super().__new__(LocalWebservice)
            obj._init(workspace, doc)
            return obj
        return super().__new__(cls)

    def __init__(self, workspace=None, name=None, **kwargs):
        if getattr(self, "_loaded", False):
            return
        doc = kwargs.get("_doc") or _get(workspace, name)
        self._init(workspace, doc)

    def _init(self, workspace, doc):
        self.workspace = workspace
        self._keys = None
        self._load(doc)
        self._loaded = True

    def _load(self, doc):
        self._doc = doc
        self.name = doc["name"]
        self.state = doc.get("state")
        self.scoring_uri = doc.get("scoring_uri")
        self.swagger_uri = doc.get("swagger_uri")
        self.auth_enabled = bool(doc.get("auth_enabled"))
        self.token_auth_enabled = False
        self.compute_type = "Local"
        self.error = doc.get("error") or None
        self.port = doc.get("port")
        self.created_time = doc.get("created_on")
        self.updated_time = doc.get("updated_on")
        self.created_by = doc.get("created_by")
        self.models = ["{}:{}".format(m["name"], m["version"]) for m in doc.get("models") or []]
        self.environment = doc.get("environment")
        self.tags = {}
        self.properties = {}
        self.description = None

    def __repr__(self):
        return "{}(workspace={!r}, name={}, state={}, scoring_uri={})".format(
            type(self).__name__, self.workspace, self.name, self.state, self.scoring_uri)

    @property
    def _client(self):
        return self.workspace._client

    @property
    def _path(self):
        return "/services/" + _q(self.name)

    def _call(self, method, path="", **kw):
        try:
            return self._client.call(method, self._path + path, **kw)
        except HTTPError as e:
            if e.status == 404 and not path:
                raise _not_found(self.name) from None
            raise e.to(WebserviceException) from None

    def update_deployment_state(self):
        """Refreshes state, scoring_uri … from the server."""
        self._load(self._call("GET"))

    reload = update_deployment_state

    def wait_for_deployment(self, show_output=False, timeout_sec=None):
        """Waits until the latest deploy or update is running (Healthy) or failed.

        Raises WebserviceException when it failed (the error names the cause;
        get_logs() has the rest) or when timeout_sec passed.
        """
        deadline = time.monotonic() + timeout_sec if timeout_sec else None
        last = None
        while True:
            doc = self._call("GET")
            self._load(doc)
            done = doc.get("observed_generation") == doc.get("generation") and self.state in ("Healthy", "Failed")
            if show_output and self.state != last:
                print(("\n" if last else "") + self.state, end="", flush=True)
            elif show_output:
                print(".", end="", flush=True)
            last = self.state
            if done or (self.state == "Healthy" and self.error and doc.get("observed_generation") == doc.get("generation")):
                break
            if doc.get("error") and doc.get("observed_generation") != doc.get("generation") and self.state == "Healthy":
                # An update failed; the previous version keeps serving.
                break
            if deadline and time.monotonic() > deadline:
                raise WebserviceException("Deployment polling exceeded timeout override of {}s. Current status: "
                                          "{}".format(timeout_sec, self.state))
            time.sleep(0.5)
        if show_output:
            print("\nService {} state: {}".format(self.name, self.state), flush=True)
        if self.state == "Failed" or self.error:
            raise WebserviceException(
                "Service deployment polling reached non-successful terminal state, current service state: {}\n"
                "Error: {}\nMore information can be found using '.get_logs()'".format(self.state, self.error),
                code="DeploymentFailed")

    def run(self, input_data):
        """Sends input_data (a JSON string, or anything JSON-serialisable) to /score; returns the answer."""
        if self.state != "Healthy":
            self.update_deployment_state()
        if not self.scoring_uri:
            raise WebserviceException("Cannot call run() when service is {}.".format(self.state))
        data = input_data if isinstance(input_data, (str, bytes)) else json.dumps(input_data)
        if isinstance(data, str):
            data = data.encode()
        headers = {"Content-Type": "application/json"}
        for attempt in (0, 1):
            if self.auth_enabled:
                if self._keys is None:
                    self._keys = self.get_keys()
                headers["Authorization"] = "Bearer " + self._keys[0]
            req = urllib.request.Request(self.scoring_uri, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=300) as resp:
                    body = resp.read()
                break
            except urllib.error.HTTPError as e:
                body = e.read().decode("utf-8", "replace")
                if e.code == 401 and attempt == 0:
                    self._keys = None
                    self.update_deployment_state()
                    continue
                raise WebserviceException(
                    "Received bad response from service. More information can be found by calling `.get_logs()` on "
                    "the webservice object.\nResponse Code: {}\nResponse Content: {}".format(e.code, body),
                    status_code=e.code) from None
            except OSError as e:
                raise WebserviceException("Could not reach the service at {}: {}".format(self.scoring_uri, e)) from None
        try:
            return json.loads(body)
        except ValueError:
            return body.decode("utf-8", "replace")

    def get_logs(self, num_lines=5000, init=False):
        """The service log's last num_lines lines."""
        try:
            with self._client.open("GET", self._path + "/logs") as resp:
                text = resp.read().decode("utf-8", "replace")
        except HTTPError as e:
            raise e.to(WebserviceException) from None
        lines = text.splitlines(True)
        return "".join(lines[-num_lines:]) if num_lines else text

    def get_keys(self):
        """(primary_key, secondary_key)."""
        doc = self._call("GET", "/keys")
        return doc["primary_key"], doc["secondary_key"]

    def regen_key(self, key, set_key=None):
        """Replaces the "Primary" or "Secondary" key with a new random one."""
        if not isinstance(key, str) or key.lower() not in ("primary", "secondary"):
            raise WebserviceException('Error, key must be either "Primary" or "Secondary".')
        if set_key is not None:
            raise not_supported("Setting a key's value (set_key)", WebserviceException)
        self._call("POST", "/regen-key", body={"key": key.lower()})
        self._keys = None

    def get_token(self):
        raise not_supported("Token auth (get_token)", WebserviceException, hint="use key auth: get_keys()")

    def delete(self):
        """Stops and removes the service; returns once it is gone."""
        try:
            self._client.call("DELETE", self._path)
        except HTTPError as e:
            if e.status == 404:
                print("No service with name {} found to delete.".format(self.name))
                return
            raise e.to(WebserviceException) from None
        self.state = "Deleting"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                self._client.call("GET", self._path)
            except HTTPError as e:
                if e.status == 404:
                    self.state = "Deleted"
                    return
                raise e.to(WebserviceException) from None
            time.sleep(0.2)

    def serialize(self):
        return {"name": self.name, "description": self.description, "tags": self.tags,
                "properties": self.properties, "state": self.state, "createdTime": self.created_time,
                "updatedTime": self.updated_time, "error": self.error, "computeType": self.compute_type,
                "workspaceName": self.workspace.name, "scoringUri": self.scoring_uri,
                "swaggerUri": self.swagger_uri, "authEnabled": self.auth_enabled, "models": self.models,
                "createdBy": self.created_by, "port": self.port}

    @staticmethod
    def list(workspace, compute_type=None, image_name=None, image_id=None, model_name=None, model_id=None,
             tags=None, properties=None, image_digest=None):
        """The workspace's services (compute_type "Local" or None; others have none)."""
        from .local import LocalWebservice
        if compute_type not in (None, "Local", "local"):
            return []
        try:
            docs = workspace._client.value("/services")
        except HTTPError as e:
            raise e.to(WebserviceException) from None
        out = []
        for d in docs:
            ms = ["{}:{}".format(m["name"], m["version"]) for m in d.get("models") or []]
            if model_name and not any(m.split(":")[0] == model_name for m in ms):
                continue
            if model_id and model_id not in ms:
                continue
            out.append(LocalWebservice(workspace, d["name"], _doc=d))
        return out


def _not_found(name):
    return WebserviceException("WebserviceNotFound: Webservice with name {} not found in provided workspace".format(name),
                               status_code=404, code="WebserviceNotFound")


def _get(workspace, name):
    try:
        return workspace._client.get("/services/" + _q(name))
    except HTTPError as e:
        if e.status == 404:
            raise _not_found(name) from None
        raise e.to(WebserviceException) from None
