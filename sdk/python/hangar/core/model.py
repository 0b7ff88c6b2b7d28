"""Model (registered model versions) and InferenceConfig."""

import os
import re
import urllib.parse

from .. import _snapshot
from .._client import HTTPError
from ..exceptions import UserErrorException, WebserviceException, not_supported


def _q(s):
    return urllib.parse.quote(s, safe="")


class InferenceConfig:
    """How a service runs a model: entry_script (init()/run()) in source_directory, in environment."""

    def __init__(self, entry_script, runtime=None, conda_file=None, extra_docker_file_steps=None,
                 source_directory=None, enable_gpu=None, description=None, base_image=None,
                 base_image_registry=None, cuda_version=None, environment=None):
        legacy = {"runtime": runtime, "conda_file": conda_file, "extra_docker_file_steps": extra_docker_file_steps,
                  "enable_gpu": enable_gpu, "base_image": base_image, "base_image_registry": base_image_registry,
                  "cuda_version": cuda_version}
        given = [k for k, v in legacy.items() if v is not None]
        if given and environment is not None:
            raise WebserviceException("Error, both environment and {} given: use only one of environment and the "
                                      "image parameters".format(", ".join(given)))
        if given and given != ["runtime"] or (runtime not in (None, "python")):
            raise not_supported("Image-based inference configs ({})".format(", ".join(given)), WebserviceException,
                                hint="pass environment=Environment(...) instead")
        if not entry_script or not entry_script.endswith(".py"):
            raise WebserviceException("Invalid driver type. Currently only Python drivers are supported.")
        path = os.path.join(source_directory, entry_script) if source_directory else entry_script
        if not os.path.isfile(path):
            raise WebserviceException("Error, provided entry_script \"{}\" cannot be found".format(path))
        self.entry_script = entry_script
        self.source_directory = source_directory
        self.environment = environment
        self.description = description
        self.runtime = runtime

    def __repr__(self):
        return "InferenceConfig(entry_script={!r}, source_directory={!r}, environment={!r})".format(
            self.entry_script, self.source_directory, self.environment)

    def _fields(self, client):
        """entry_script, source_digest and environment fields of a deploy or update."""
        if self.source_directory:
            src, entry = self.source_directory, self.entry_script
        else:
            src, entry = os.path.dirname(os.path.abspath(self.entry_script)), os.path.basename(self.entry_script)
        digest = client.upload_blob(_snapshot.write(src))
        out = {"entry_script": entry.replace(os.sep, "/"), "source_digest": digest}
        if self.environment is not None:
            ref, spec = self.environment._ref()
            if ref:
                out["environment"] = ref
            else:
                out["environment_spec"] = spec
        return out


class Model:
    """A registered model version (azureml.core.Model).

    Model(workspace, name) loads the latest version, Model(ws, name, version=2)
    a given one, Model(ws, id="name:2") likewise.
    """

    def __init__(self, workspace, name=None, id=None, tags=None, properties=None, version=None, run_id=None,
                 model_framework=None, expand=True, **kwargs):
        self.workspace = workspace
        if kwargs.get("_doc") is not None:
            self._load(kwargs["_doc"])
            return
        if id is not None:
            name, _, v = id.partition(":")
            version = int(v) if v else version
        if not name:
            raise WebserviceException("Model: name or id is required")
        path = "/models/" + _q(name) + ("/versions/{}".format(version) if version is not None else "")
        try:
            doc = workspace._client.get(path)
        except HTTPError as e:
            if e.status == 404:
                raise WebserviceException(
                    "ModelNotFound: Model with name {}{} not found in provided workspace".format(
                        name, ":" + str(version) if version is not None else ""),
                    status_code=404, code="ModelNotFound") from None
            raise e.to(WebserviceException) from None
        self._load(doc)

    def _load(self, doc):
        self._doc = doc
        self.name = doc["name"]
        self.version = doc["version"]
        self.id = "{}:{}".format(self.name, self.version)
        self.tags = dict(doc.get("tags") or {})
        self.properties = dict(doc.get("properties") or {})
        self.description = doc.get("description") or None
        self.run_id = doc.get("run_id") or None
        self.created_time = doc.get("created_on")
        self.created_by = doc.get("created_by")
        self.url = doc.get("path")
        self.model_framework = self.properties.get("model_framework")
        self.model_framework_version = self.properties.get("model_framework_version")

    def __repr__(self):
        return "Model(workspace={!r}, name={}, id={}, version={}, tags={}, properties={})".format(
            self.workspace, self.name, self.id, self.version, self.tags, self.properties)

    def serialize(self):
        return {"name": self.name, "id": self.id, "version": self.version, "tags": self.tags,
                "properties": self.properties, "description": self.description, "runId": self.run_id,
                "createdTime": self.created_time, "url": self.url}

    @staticmethod
    def _check_register_args(model_framework, model_framework_version, datasets, sample_input_dataset,
                             sample_output_dataset, resource_configuration, child_paths=None):
        if model_framework_version and not model_framework:
            raise WebserviceException("Error, model_framework_version cannot be set without model_framework")
        for arg, v in (("datasets", datasets), ("sample_input_dataset", sample_input_dataset),
                       ("sample_output_dataset", sample_output_dataset),
                       ("resource_configuration", resource_configuration), ("child_paths", child_paths)):
            if v:
                raise not_supported("Model.register({}=…)".format(arg), WebserviceException)

    @staticmethod
    def _body(name, tags, properties, description, model_framework, model_framework_version):
        body = {"name": name}
        if description:
            body["description"] = description
        if tags:
            body["tags"] = {str(k): str(v) for k, v in tags.items()}
        props = {str(k): str(v) for k, v in (properties or {}).items()}
        if model_framework:
            props["model_framework"] = str(model_framework)
        if model_framework_version:
            props["model_framework_version"] = str(model_framework_version)
        if props:
            body["properties"] = props
        return body

    @staticmethod
    def register(workspace, model_path, model_name, tags=None, properties=None, description=None, datasets=None,
                 model_framework=None, model_framework_version=None, child_paths=None, sample_input_dataset=None,
                 sample_output_dataset=None, resource_configuration=None):
        """Uploads a local file or folder and registers it as model_name's next version."""
        Model._check_register_args(model_framework, model_framework_version, datasets, sample_input_dataset,
                                   sample_output_dataset, resource_configuration, child_paths)
        if not os.path.exists(model_path):
            raise WebserviceException('Error, provided model path "{}" cannot be found'.format(model_path))
        print("Registering model {}".format(model_name))
        client = workspace._client
        body = Model._body(model_name, tags, properties, description, model_framework, model_framework_version)
        try:
            body["digest"] = client.upload_blob(_snapshot.write_path(model_path))
            body["path"] = os.path.basename(os.path.abspath(model_path).rstrip(os.sep))
            doc = client.call("POST", "/models", body=body)
        except HTTPError as e:
            raise e.to(WebserviceException) from None
        return Model(workspace, _doc=doc)

    @staticmethod
    def _register_from_run(run, model_name, model_path, tags, properties, description, model_framework,
                           model_framework_version, datasets, sample_input_dataset, sample_output_dataset,
                           resource_configuration):
        Model._check_register_args(model_framework, model_framework_version, datasets, sample_input_dataset,
                                   sample_output_dataset, resource_configuration)
        if not model_path:
            raise WebserviceException("model_path is required: the path of the model among the run's files, "
                                      "e.g. outputs/model.pkl")
        body = Model._body(model_name, tags, properties, description, model_framework, model_framework_version)
        body["run_id"] = run.id
        body["path"] = model_path
        ws = run.experiment.workspace
        try:
            doc = ws._client.call("POST", "/models", body=body)
        except HTTPError as e:
            raise e.to(WebserviceException) from None
        return Model(ws, _doc=doc)

    @staticmethod
    def list(workspace, name=None, tags=None, properties=None, run_id=None, latest=False, **kwargs):
        """Model versions, newest first; latest keeps one per name."""
        try:
            docs = workspace._client.value("/models", {"name": name})
        except HTTPError as e:
            raise e.to(WebserviceException) from None
        out, seen = [], set()
        for d in docs:
            if run_id and d.get("run_id") != run_id:
                continue
            if tags and not _match(d.get("tags") or {}, tags):
                continue
            if properties and not _match(d.get("properties") or {}, properties):
                continue
            if latest:
                if d["name"] in seen:
                    continue
                seen.add(d["name"])
            out.append(Model(workspace, _doc=d))
        return out

    def _files(self):
        with self.workspace._client.open("GET", "/models/{}/versions/{}/files".format(_q(self.name), self.version),
                                         timeout=600) as resp:
            return resp.read()

    def download(self, target_dir=".", exist_ok=False, exists_ok=None):
        """Downloads the model's file or folder into target_dir; returns its path."""
        if exists_ok is not None:
            exist_ok = exists_ok
        target = os.path.join(target_dir, os.path.basename(self.url))
        if os.path.exists(target) and not exist_ok:
            raise WebserviceException("File or folder {} already exists; pass exist_ok=True to overwrite".format(target))
        try:
            data = self._files()
        except HTTPError as e:
            raise e.to(WebserviceException) from None
        os.makedirs(target_dir, exist_ok=True)
        _snapshot.extract(data, target_dir)
        return target

    def delete(self):
        """Deletes this version (refused while a service uses it)."""
        try:
            self.workspace._client.call("DELETE", "/models/{}/versions/{}".format(_q(self.name), self.version))
        except HTTPError as e:
            raise e.to(WebserviceException) from None

    def add_tags(self, tags):
        raise not_supported("Changing tags after registration (add_tags)", WebserviceException)

    def add_properties(self, properties):
        raise not_supported("Changing properties after registration (add_properties)", WebserviceException)

    @staticmethod
    def get_model_path(model_name, version=None, _workspace=None):
        """The local path of a model's file or folder.

        In a service (AZUREML_MODEL_DIR set): one model → the folder is that
        model's version folder; several → <dir>/<name>/<version>/. Elsewhere:
        ./azureml-models/<name>/<version>/ if present, else the model is
        downloaded there (from _workspace, or the workspace of the config).
        The path is the model's single file or folder when it holds one entry.
        """
        base = os.environ.get("AZUREML_MODEL_DIR")
        if base:
            vdir = _version_dir(os.path.join(base, model_name), version)
            if vdir is None:
                parent = os.path.dirname(os.path.normpath(base))
                if os.path.basename(parent) == model_name and (version is None or
                                                               os.path.basename(os.path.normpath(base)) == str(version)):
                    vdir = base
            if vdir is None:
                raise WebserviceException("ModelNotFound: model {}{} is not deployed with this service "
                                          "(AZUREML_MODEL_DIR={})".format(model_name, ":" + str(version) if version else "",
                                                                          base), code="ModelNotFound")
            return _single(vdir)
        cache = os.path.join(os.getcwd(), "azureml-models", model_name)
        vdir = _version_dir(cache, version)
        if vdir is not None:
            return _single(vdir)
        if _workspace is None:
            from .workspace import Workspace
            try:
                _workspace = Workspace.from_config() if not os.environ.get("HANGAR_RUN_ID") else Workspace()
            except UserErrorException:
                raise WebserviceException("ModelNotFound: model {} is not in ./azureml-models and no workspace is "
                                          "configured to download it from".format(model_name)) from None
        m = Model(_workspace, model_name, version=version)
        vdir = os.path.join(cache, str(m.version))
        try:
            m.download(vdir, exist_ok=True)
        except WebserviceException as e:
            raise WebserviceException("Model {} could not be downloaded: {}".format(m.id, e), status_code=e.status_code,
                                      code=e.code) from None
        return _single(vdir)

    @staticmethod
    def deploy(workspace, name, models, inference_config=None, deployment_config=None, deployment_target=None,
               overwrite=False, show_output=False):
        """Deploys models as the web service name; returns it without waiting (call wait_for_deployment)."""
        from .webservice import LocalWebservice
        from .webservice.local import LocalWebserviceDeploymentConfiguration
        if deployment_target is not None:
            raise not_supported("Deployment targets (deployment_target=…)", WebserviceException,
                                hint="use LocalWebservice.deploy_configuration()")
        if deployment_config is None:
            raise not_supported("Deploying without a deployment_config (Azure Container Instances)",
                                WebserviceException, hint="use LocalWebservice.deploy_configuration()")
        if not isinstance(deployment_config, LocalWebserviceDeploymentConfiguration):
            raise not_supported("{}".format(type(deployment_config).__name__), WebserviceException)
        if inference_config is None:
            raise not_supported("No-code deployment (inference_config=None)", WebserviceException,
                                hint="pass InferenceConfig(entry_script=..., source_directory=...)")
        client = workspace._client
        body = {"name": name, "models": [m.id if isinstance(m, Model) else str(m) for m in models or []],
                "target": "local", "overwrite": bool(overwrite)}
        body.update(deployment_config._fields())
        try:
            body.update(inference_config._fields(client))
            doc = client.call("POST", "/services", body=body)
        except HTTPError as e:
            raise e.to(WebserviceException) from None
        svc = LocalWebservice(workspace, name, _doc=doc)
        if show_output:
            svc.wait_for_deployment(show_output=True)
        return svc

    @staticmethod
    def package(*args, **kwargs):
        raise not_supported("Model.package (Docker images)", WebserviceException)

    @staticmethod
    def profile(*args, **kwargs):
        raise not_supported("Model.profile", WebserviceException)


def _match(have, want):
    if isinstance(want, str):
        return want in have
    if isinstance(want, dict):
        return all(have.get(k) == v for k, v in want.items())
    for w in want:
        if isinstance(w, (list, tuple)):
            if have.get(w[0]) != w[1]:
                return False
        elif w not in have:
            return False
    return True


def _version_dir(name_dir, version):
    if not os.path.isdir(name_dir):
        return None
    if version is not None:
        d = os.path.join(name_dir, str(version))
        return d if os.path.isdir(d) else None
    versions = [int(v) for v in os.listdir(name_dir) if re.fullmatch(r"\d+", v)]
    return os.path.join(name_dir, str(max(versions))) if versions else None


def _single(vdir):
    entries = [e for e in os.listdir(vdir) if not e.startswith(".")]
    return os.path.join(vdir, entries[0]) if len(entries) == 1 else vdir
