"""LocalWebservice: a service on the server's host (Hangar's "local" target)."""

from ..._client import HTTPError
from ...exceptions import WebserviceException, not_supported
from .webservice import Webservice


class LocalWebserviceDeploymentConfiguration:
    """Where and how a local service runs: port (None picks a free one), and
    Hangar's additions: auth_enabled (key auth; off by default as in Azure ML),
    workers and request_timeout_seconds."""

    def __init__(self, port=None, auth_enabled=False, workers=None, request_timeout_seconds=None):
        self.port = port
        self.auth_enabled = auth_enabled
        self.workers = workers
        self.request_timeout_seconds = request_timeout_seconds

    def __repr__(self):
        return "LocalWebserviceDeploymentConfiguration(port={}, auth_enabled={})".format(self.port, self.auth_enabled)

    def _fields(self):
        out = {"auth": "key" if self.auth_enabled else "none"}
        if self.port:
            out["port"] = int(self.port)
        if self.workers:
            out["workers"] = int(self.workers)
        if self.request_timeout_seconds:
            out["request_timeout_seconds"] = int(self.request_timeout_seconds)
        return out

    def validate_configuration(self):
        if self.port is not None and not (1024 <= int(self.port) <= 65535):
            raise WebserviceException("Error, port must be between 1024 and 65535.")


class LocalWebservice(Webservice):
    """A model service on the server's host: a Go front end and Python workers."""

    _webservice_type = "Local"

    def __init__(self, workspace, name, must_exist=True, **kwargs):
        super().__init__(workspace, name, **kwargs)

    @staticmethod
    def deploy_configuration(port=None, auth_enabled=False, workers=None, request_timeout_seconds=None):
        """The deployment configuration of a local service (port None: a free one, kept across restarts)."""
        c = LocalWebserviceDeploymentConfiguration(port, auth_enabled, workers, request_timeout_seconds)
        c.validate_configuration()
        return c

    def update(self, models=None, image_config=None, deployment_config=None, port=None, inference_config=None,
               auth_enabled=None, workers=None):
        """Deploys a new version beside the old one; the old keeps serving until the new init() returned.
        Call wait_for_deployment() after."""
        if image_config is not None:
            raise not_supported("image_config", WebserviceException)
        if port is not None or (deployment_config is not None and deployment_config.port and
                                deployment_config.port != self.port):
            raise not_supported("Changing a service's port", WebserviceException, hint="delete and deploy again")
        body = {}
        if models is not None:
            body["models"] = [getattr(m, "id", None) or str(m) for m in models]
        if inference_config is not None:
            body.update(inference_config._fields(self._client))
        if deployment_config is not None:
            f = deployment_config._fields()
            body["auth"] = f["auth"]
            for k in ("workers", "request_timeout_seconds"):
                if k in f:
                    body[k] = f[k]
        if auth_enabled is not None:
            body["auth"] = "key" if auth_enabled else "none"
        if workers is not None:
            body["workers"] = int(workers)
        if not body:
            raise WebserviceException("No parameters provided to update.")
        try:
            doc = self._client.call("PATCH", self._path, body=body)
        except HTTPError as e:
            raise e.to(WebserviceException) from None
        self._load(doc)
        self._keys = None

    def deploy_to_cloud(self, name=None, deployment_config=None, deployment_target=None):
        raise not_supported("deploy_to_cloud", WebserviceException)
