"""Environment: the interpreter, pip requirements and variables of runs and services."""

import os

from .._client import HTTPError
from ..exceptions import UserErrorException
from .conda_dependencies import CondaDependencies


class PythonSection:
    """env.python: interpreter_path (None = the node's python3) and conda_dependencies."""

    def __init__(self):
        self.interpreter_path = None
        self.user_managed_dependencies = False
        self.conda_dependencies = CondaDependencies()


class DockerSection:
    """env.docker: kept for compatibility; a set base_image is refused at submit."""

    def __init__(self):
        self.enabled = False
        self.base_image = None
        self.base_dockerfile = None


class Environment:
    """A run environment (azureml.core.Environment): name, python.interpreter_path,
    pip requirements (python.conda_dependencies), environment_variables.
    register() stores a new version; Environment.get loads one."""

    def __init__(self, name, **kwargs):
        self.name = name
        self.version = None
        self.python = PythonSection()
        self.docker = DockerSection()
        self.environment_variables = {}
        self.inferencing_stack_version = None

    def __repr__(self):
        return "Environment(name={!r}, version={!r}, python={!r}, requirements={!r})".format(
            self.name, self.version, self.python.interpreter_path, self.python.conda_dependencies.pip_packages)

    @staticmethod
    def from_pip_requirements(name, file_path, pip_version=None):
        """An environment whose requirements are the lines of a requirements.txt."""
        env = Environment(name)
        with open(file_path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("-"):
                    env.python.conda_dependencies.add_pip_package(line)
        return env

    @staticmethod
    def from_conda_specification(name, file_path):
        from ..exceptions import not_supported
        raise not_supported("Conda specifications", UserErrorException,
                            hint="use Environment.from_pip_requirements")

    def _spec(self):
        if self.docker.base_image or self.docker.base_dockerfile:
            from ..exceptions import not_supported
            raise not_supported("Docker images for environments (env.docker)", UserErrorException)
        spec = {"name": self.name}
        if self.python.interpreter_path:
            spec["python"] = self.python.interpreter_path
        if self.python.conda_dependencies.pip_packages:
            spec["requirements"] = self.python.conda_dependencies.pip_packages
        if self.environment_variables:
            spec["variables"] = {str(k): str(v) for k, v in self.environment_variables.items()}
        return spec

    def _ref(self):
        """(environment, environment_spec) fields of a run or service."""
        if self.version is not None:
            return "{}:{}".format(self.name, self.version), None
        return None, self._spec()

    def register(self, workspace):
        """Stores this environment as its name's next version; returns the registered one."""
        try:
            doc = workspace._client.call("POST", "/environments", body=self._spec())
        except HTTPError as e:
            raise e.to(UserErrorException) from None
        return Environment._from_doc(doc)

    @staticmethod
    def get(workspace, name, version=None, label=None):
        """A registered environment, its latest version unless version is given."""
        import urllib.parse
        try:
            doc = workspace._client.get("/environments/" + urllib.parse.quote(name, safe=""),
                                        query={"version": version})
        except HTTPError as e:
            if e.status == 404:
                raise UserErrorException("Environment {}{} not found in the workspace".format(
                    name, ":" + str(version) if version else ""), status_code=404, code="NotFound") from None
            raise e.to(UserErrorException) from None
        return Environment._from_doc(doc)

    @staticmethod
    def list(workspace):
        """The registered environments by name (latest versions)."""
        out = {}
        for d in workspace._client.value("/environments"):
            e = Environment._from_doc(d)
            if e.name not in out or (e.version or 0) > (out[e.name].version or 0):
                out[e.name] = e
        return out

    @staticmethod
    def _from_doc(doc):
        e = Environment(doc.get("name"))
        e.version = doc.get("version")
        e.python.interpreter_path = doc.get("python") or None
        for r in doc.get("requirements") or []:
            e.python.conda_dependencies.add_pip_package(r)
        e.environment_variables = dict(doc.get("variables") or {})
        return e

    def save_to_directory(self, path, overwrite=False):
        os.makedirs(path, exist_ok=True)
        import json
        with open(os.path.join(path, "environment.json"), "w") as f:
            json.dump(self._spec(), f, indent=2)
