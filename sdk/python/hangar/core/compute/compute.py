"""ComputeTarget, the base of every compute target class, and its config bases."""

import datetime

from ..._client import HTTPError
from ...exceptions import ComputeTargetException, UserErrorException, not_supported

_RESERVED = ("amlcompute", "local", "containerinstance")


def _call(workspace, method, path, body=None, query=None, ws=True):
    """A compute call: every error answer becomes ComputeTargetException."""
    try:
        return workspace._client.call(method, path, body=body, query=query, ws=ws) or {}
    except HTTPError as e:
        raise e.to(ComputeTargetException) from None


def _get_doc(workspace, name):
    try:
        return workspace._client.get("/computes/" + _quote(name))
    except HTTPError as e:
        if e.status == 404:
            raise ComputeTargetException(
                "ComputeTargetNotFound: Compute Target with name {} not found in provided workspace".format(name),
                status_code=404, code="ComputeTargetNotFound", hint="ComputeTarget.list(ws) shows the existing ones") from None
        raise e.to(ComputeTargetException) from None


def _quote(s):
    import urllib.parse
    return urllib.parse.quote(s, safe="")


def _parse_time(s):
    if not s:
        return None
    try:
        s = s.replace("Z", "+00:00")
        # Python < 3.11 accepts at most 6 fraction digits.
        if "." in s:
            head, rest = s.split(".", 1)
            i = 0
            while i < len(rest) and rest[i].isdigit():
                i += 1
            s = head + "." + rest[:i][:6].ljust(6, "0") + rest[i:]
        return datetime.datetime.fromisoformat(s)
    except ValueError:
        return None


class ComputeTarget:
    """A compute target of a workspace (azureml.core.compute.ComputeTarget).

    ComputeTarget(workspace, name) loads it and returns the matching class:
    AmlCompute for a cluster, and a plain ComputeTarget for the built-in
    "local" or any kind this SDK does not know. A missing name raises
    ComputeTargetException("ComputeTargetNotFound: …").
    """

    _compute_type = None  # the v1 computeType string of the class
    _server_types = ()

    def __new__(cls, workspace=None, name=None):
        if workspace is not None and name is not None:
            doc = _get_doc(workspace, name)
            sub = _class_for(doc.get("type"))
            if cls is not ComputeTarget and not issubclass(sub, cls):
                raise ComputeTargetException(
                    "Compute target {} is of type {}, not {}".format(name, doc.get("type"), cls.__name__))
            obj = super().__new__(sub)
            obj._load(workspace, doc)
            return obj
        return super().__new__(cls)

    def __init__(self, workspace=None, name=None):
        # State is set by __new__ (loading) or _load.
        if not hasattr(self, "name"):
            self.workspace, self.name = workspace, name
            self._doc = {}

    def _load(self, workspace, doc):
        self.workspace = workspace
        self._doc = doc
        self.name = doc.get("name")
        self.type = self._compute_type or doc.get("type")
        self.id = "/workspaces/{}/computes/{}".format(workspace.name, self.name)
        self.location = "local"
        self.tags = doc.get("tags") or {}
        self.description = doc.get("description") or None
        self.created_on = _parse_time(doc.get("created_on"))
        self.modified_on = _parse_time(doc.get("modified_on"))
        self.provisioning_state = doc.get("provisioning_state")
        self.provisioning_errors = [dict(e) for e in (doc.get("provisioning_errors") or [])] or None
        self.cluster_resource_id = None
        self.cluster_location = "local"
        self.is_attached = False

    def __repr__(self):
        return "{}(workspace={!r}, name={}, id={}, type={}, provisioning_state={}, location={}, tags={})".format(
            type(self).__name__, self.workspace, self.name, self.id, self.type,
            self.provisioning_state, self.location, self.tags)

    # -- class-level operations

    @staticmethod
    def create(workspace, name, provisioning_configuration):
        """Creates a compute target from a provisioning configuration."""
        if name in _RESERVED:
            raise UserErrorException("Please specify a different target name. {} is a reserved name.".format(name))
        if not isinstance(provisioning_configuration, ComputeTargetProvisioningConfiguration):
            raise ComputeTargetException("provisioning_configuration must be a provisioning configuration, got {}".format(
                type(provisioning_configuration).__name__))
        provisioning_configuration.validate_configuration()
        return provisioning_configuration._target_class._create(workspace, name, provisioning_configuration)

    @staticmethod
    def attach(workspace, name, attach_configuration):
        """Attaches an existing resource. No kind of attached compute exists on this server yet."""
        if name in _RESERVED:
            raise UserErrorException("Please specify a different target name. {} is a reserved name.".format(name))
        kind = getattr(attach_configuration, "_target_class", None)
        raise not_supported("Attaching {}".format(kind.__name__ if kind else "a compute"), ComputeTargetException)

    @staticmethod
    def list(workspace):
        """Every compute target of the workspace, each as its class."""
        docs = _call(workspace, "GET", "/computes").get("value") or []
        out = []
        for d in docs:
            obj = object.__new__(_class_for(d.get("type")))
            obj._load(workspace, d)
            out.append(obj)
        return out

    # -- object operations

    def refresh_state(self):
        """Reloads the compute's state from the server."""
        self._load(self.workspace, _get_doc(self.workspace, self.name))

    def get_status(self):
        """The provisioning state, refreshed."""
        self.refresh_state()
        return self.provisioning_state

    def get(self):
        """The server's document of the compute."""
        return _get_doc(self.workspace, self.name)

    def wait_for_completion(self, show_output=False, is_delete_operation=False):
        """Waits until provisioning ended (or, when deleting, the compute is gone)."""
        _wait_provisioned(self, show_output, is_delete_operation)

    def delete(self):
        """Deletes the compute (refused for the built-in local)."""
        doc = _call(self.workspace, "DELETE", "/computes/" + _quote(self.name))
        if doc:
            self._load(self.workspace, doc)
        self.provisioning_state = "Deleting"

    def detach(self):
        raise ComputeTargetException(
            "Detach is not supported for {} object. Try to use delete instead.".format(type(self).__name__))

    def serialize(self):
        """The compute as a dict, in azureml's shape (never holding secrets)."""
        return {
            "id": self.id,
            "name": self.name,
            "location": self.location,
            "tags": self.tags,
            "properties": {
                "description": self.description,
                "computeType": self.type,
                "computeLocation": self.location,
                "resourceId": None,
                "provisioningErrors": self.provisioning_errors,
                "provisioningState": self.provisioning_state,
                "isAttachedCompute": self.is_attached,
                "createdOn": self._doc.get("created_on"),
                "modifiedOn": self._doc.get("modified_on"),
            },
        }

    @staticmethod
    def deserialize(workspace, object_dict):
        """Rebuilds an object from serialize()'s dict (loading it fresh from the server)."""
        return ComputeTarget(workspace, object_dict["name"])


def _wait_provisioned(target, show_output, is_delete_operation, poll=1.0, timeout=25 * 60):
    import time
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            target.refresh_state()
        except ComputeTargetException as e:
            if is_delete_operation and e.status_code == 404:
                if show_output:
                    print("Provisioning operation finished, operation \"Succeeded\"")
                return
            raise
        state = target.provisioning_state
        if show_output and state != last:
            print(state)
        last = state
        if not is_delete_operation and state in ("Succeeded", "Failed", "Canceled"):
            if show_output:
                print("Provisioning operation finished, operation \"{}\"".format(state))
            if state != "Succeeded":
                raise ComputeTargetException(
                    "Compute object provisioning polling reached non-successful terminal state, "
                    "current provisioning state: {}\nProvisioning errors: {}".format(state, target.provisioning_errors))
            return
        if time.monotonic() > deadline:
            return
        time.sleep(poll)


class ComputeTargetProvisioningConfiguration:
    """Base of provisioning configurations."""

    _target_class = None

    def __init__(self, type, location):
        self.type = type
        self.location = location

    def validate_configuration(self):
        raise NotImplementedError


class ComputeTargetAttachConfiguration:
    """Base of attach configurations."""

    _target_class = None

    def __init__(self, type):
        self.type = type

    def validate_configuration(self):
        raise NotImplementedError


class ComputeTargetUpdateConfiguration:
    """Base of update configurations."""

    def __init__(self, type):
        self.type = type

    def validate_configuration(self):
        raise NotImplementedError


_registry = {}


def _register(cls, *server_types):
    for t in server_types:
        _registry[t] = cls


def _class_for(server_type):
    return _registry.get(server_type, ComputeTarget)
