"""Experiment: a named group of runs."""

from .._client import HTTPError
from .. import _snapshot
from ..exceptions import ExperimentExecutionException


class Experiment:
    """Runs under one name in a workspace (azureml.core.Experiment)."""

    def __init__(self, workspace, name, _skip_name_validation=False, _id=None, _archived_time=None,
                 _create_in_cloud=True, _experiment_dto=None, **kwargs):
        self.workspace = workspace
        self.name = name

    def __repr__(self):
        return "Experiment(Name: {}, Workspace: {})".format(self.name, self.workspace.name)

    def submit(self, config, tags=None, **kwargs):
        """Snapshots config.source_directory, uploads it unless stored, and queues the run."""
        from .run import Run
        body = config._body()
        data = _snapshot.write(config.source_directory)
        client = self.workspace._client
        try:
            body["snapshot_digest"] = client.upload_blob(data)
            body["experiment"] = self.name
            if tags:
                body["tags"] = {str(k): str(v) for k, v in tags.items()}
            doc = client.call("POST", "/runs", body=body)
        except HTTPError as e:
            raise e.to(ExperimentExecutionException) from None
        return Run._from_doc(self.workspace, doc, experiment=self)

    def get_runs(self, type=None, tags=None, properties=None, include_children=False):
        """The experiment's runs, newest first (a generator)."""
        from .run import Run
        for d in self.workspace._client.value("/runs", {"experiment": self.name}):
            yield Run._from_doc(self.workspace, d, experiment=self)

    @staticmethod
    def list(workspace, experiment_name=None, view_type=None, tags=None):
        names = sorted({d.get("experiment") for d in workspace._client.value("/runs") if d.get("experiment")})
        return [Experiment(workspace, n) for n in names if experiment_name in (None, n)]
