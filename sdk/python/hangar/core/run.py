"""Run: a submitted training run, and the live run inside a script."""

import codecs
import json
import numbers
import os
import shutil
import sys
import time
import urllib.parse

from .. import _snapshot
from .._client import HTTPError, _Client
from ..exceptions import ActivityFailedException, ExperimentExecutionException, UserErrorException, not_supported

_TERMINAL = ("Completed", "Failed", "Canceled")
_ROW = "__hangar_row__"


def _q(s):
    return urllib.parse.quote(s, safe="")


class Run:
    """A run of an experiment (azureml.core.Run).

    Run(experiment, run_id) loads an existing run. Inside a script started
    by Hangar, Run.get_context() returns the live run, which logs metrics;
    outside one it returns an offline run that prints what it would log.
    """

    def __init__(self, experiment, run_id, outputs=None, **kwargs):
        self.experiment = experiment
        self._id = run_id
        self._doc = kwargs.get("_doc")
        self._live = kwargs.get("_live", False)
        if self._doc is None and not self._live:
            self._refresh()

    @staticmethod
    def _from_doc(workspace, doc, experiment=None):
        from .experiment import Experiment
        if experiment is None:
            experiment = Experiment(workspace, doc.get("experiment") or "default")
        return Run(experiment, doc["id"], _doc=doc)

    def __repr__(self):
        return "Run(Experiment: {},\nId: {},\nType: azureml.scriptrun,\nStatus: {})".format(
            self.experiment.name, self.id, self.status)

    # -- identity

    @property
    def id(self):
        return self._id

    @property
    def number(self):
        return None

    @property
    def _client(self):
        return self.experiment.workspace._client

    @property
    def _path(self):
        return "/runs/" + _q(self._id)

    @property
    def status(self):
        return (self._doc or {}).get("status")

    @property
    def tags(self):
        return dict((self._doc or {}).get("tags") or {})

    @property
    def properties(self):
        return {}

    def _call(self, method, path="", **kw):
        try:
            return self._client.call(method, self._path + path, **kw)
        except HTTPError as e:
            if e.status == 404 and not path:
                raise ExperimentExecutionException(
                    "Run {} not found in workspace {}".format(self._id, self.experiment.workspace.name),
                    status_code=404, code="RunNotFound") from None
            raise e.to(ExperimentExecutionException) from None

    def _refresh(self):
        self._doc = self._call("GET")
        return self._doc

    # -- state

    def get_status(self):
        """The run's status, refreshed: Queued, Preparing, Running, Completed, Failed, Canceled …"""
        return self._refresh()["status"]

    def get_details(self):
        """The run's details in azureml's shape (runId, target, status, startTimeUtc …)."""
        d = self._refresh()
        out = {
            "runId": d["id"],
            "target": d.get("compute"),
            "status": d.get("status"),
            "startTimeUtc": d.get("started_on"),
            "endTimeUtc": d.get("ended_on"),
            "properties": {},
            "tags": dict(d.get("tags") or {}),
            "inputDatasets": [],
            "outputDatasets": [],
            "runDefinition": {
                "script": d.get("script"),
                "command": d.get("command"),
                "arguments": d.get("args") or [],
                "target": d.get("compute"),
                "environment": {"name": d.get("environment"), "python": {"interpreterPath": d.get("python")}},
                "nodeCount": d.get("node_count"),
                "maxRunDurationSeconds": d.get("max_run_duration_seconds"),
            },
            "logFiles": {},
            "submittedBy": d.get("created_by"),
            "attempts": d.get("attempts") or [],
        }
        if d.get("error"):
            out["error"] = {"error": dict(d["error"])}
        if d.get("status_reason"):
            out["statusReason"] = d["status_reason"]
        return out

    def wait_for_completion(self, show_output=False, wait_post_processing=False, raise_on_error=True):
        """Waits until the run ends, streaming its log when show_output; returns get_details().

        Raises ActivityFailedException for a Failed or Canceled run when raise_on_error.
        """
        if show_output:
            print("RunId: {}\nWeb View: {}/api/v1{}{}\n".format(self.id, self._client.url,
                                                              self._client.ws_path(""), self._path))
            print("Streaming log\n=============\n", flush=True)
            self._stream_log(sys.stdout)
        while self.get_status() not in _TERMINAL:
            time.sleep(0.5)
        details = self.get_details()
        if show_output:
            print("\nExecution Summary\n=================\nRunId: {}\nStatus: {}\n".format(self.id, details["status"]),
                  flush=True)
        if raise_on_error and details["status"] != "Completed":
            err = (self._doc.get("error") or {})
            msg = {"runId": self.id, "status": details["status"], "error": err,
                   "reason": self._doc.get("status_reason")}
            raise ActivityFailedException(error_details=json.dumps(msg, indent=4))
        return details

    def _stream_log(self, out, offset=0):
        """Follows the log until the run ends; reconnects on a dropped connection."""
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            try:
                with self._client.open("GET", self._path + "/logs", query={"offset": offset, "follow": "true"},
                                       timeout=3600) as resp:
                    while True:
                        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                        if not chunk:
                            break
                        offset += len(chunk)
                        out.write(dec.decode(chunk))
                        out.flush()
            except HTTPError as e:
                raise e.to(ExperimentExecutionException) from None
            except OSError:
                time.sleep(1)
                continue
            if self.get_status() in _TERMINAL:
                # One last read for anything written after the stream ended.
                try:
                    with self._client.open("GET", self._path + "/logs", query={"offset": offset}) as resp:
                        out.write(dec.decode(resp.read(), final=True))
                except (HTTPError, OSError):
                    pass
                out.flush()
                return

    def get_log(self):
        """The run's whole log as text (Hangar addition)."""
        with self._client.open("GET", self._path + "/logs") as resp:
            return resp.read().decode("utf-8", "replace")

    def cancel(self):
        """Asks the run to stop; a run that already ended is left as it is."""
        self._doc = self._call("POST", "/cancel") or self._doc

    # -- metrics

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False):
        """Metrics by name: a value logged once is that value, logged several times a list in order;
        rows from log_row are a dict of columns."""
        docs = (self._call("GET", "/metrics") or {}).get("value") or []
        series = {}
        for m in docs:
            if name is not None and m["name"] != name:
                continue
            v = m.get("value")
            if v is None:
                v = m.get("text")
                if isinstance(v, str) and v.startswith('{"' + _ROW + '"'):
                    try:
                        v = json.loads(v)[_ROW]
                    except ValueError:
                        pass
            series.setdefault(m["name"], []).append(v)
        out = {}
        for k, vals in series.items():
            if all(isinstance(v, dict) for v in vals):
                cols = {}
                for row in vals:
                    for c, cv in row.items():
                        cols.setdefault(c, []).append(cv)
                out[k] = {c: cv[0] if len(cv) == 1 else cv for c, cv in cols.items()}
            else:
                out[k] = vals[0] if len(vals) == 1 else vals
        return out

    def _post_metrics(self, metrics):
        if not metrics:
            return
        try:
            self._client.post_retrying(self._path + "/metrics", {"metrics": metrics})
        except HTTPError as e:
            raise e.to(ExperimentExecutionException) from None

    @staticmethod
    def _metric(name, value, step=None):
        m = {"name": name}
        if isinstance(value, bool):
            m["value"] = 1.0 if value else 0.0
        elif isinstance(value, numbers.Real):
            m["value"] = float(value)
        else:
            m["text"] = value if isinstance(value, str) else json.dumps(value, default=str)
        if step is not None:
            m["step"] = int(step)
        return m

    def log(self, name, value, description="", step=None):
        """Logs a metric value; logging a name again makes a series."""
        self._post_metrics([self._metric(name, value, step)])

    def log_list(self, name, value, description=""):
        """Logs a list of values under one name."""
        self._post_metrics([self._metric(name, v, i) for i, v in enumerate(value)])

    def log_row(self, name, description=None, **kwargs):
        """Logs one row of a table (columns as keyword arguments)."""
        self._post_metrics([{"name": name, "text": json.dumps({_ROW: kwargs}, default=str)}])

    def log_table(self, name, value, description=""):
        """Logs a table given as {column: [values]}."""
        cols = list(value)
        n = max((len(value[c]) for c in cols), default=0)
        self._post_metrics([{"name": name, "text": json.dumps({_ROW: {c: value[c][i] for c in cols if i < len(value[c])}},
                                                               default=str)} for i in range(n)])

    def log_image(self, name, path=None, plot=None, description=""):
        raise not_supported("Image metrics (log_image)", ExperimentExecutionException,
                            hint="save the image under ./outputs instead")

    def tag(self, key, value=None):
        raise not_supported("Run tags set after submit (tag)", ExperimentExecutionException,
                            hint="pass tags to Experiment.submit(config, tags={...})")

    def set_tags(self, tags):
        self.tag(None)

    # -- files

    def _files(self):
        with self._client.open("GET", self._path + "/files", timeout=600) as resp:
            return resp.read()

    def get_file_names(self):
        """The run's files: outputs/… and logs/…"""
        try:
            return sorted(_snapshot.names(self._files()))
        except HTTPError as e:
            raise e.to(ExperimentExecutionException) from None

    def download_file(self, name, output_file_path=None, _validate_checksum=False):
        """Downloads one file of the run (e.g. "outputs/model.pkl") to output_file_path
        (a file, or a directory to put it in; default the current directory)."""
        data = self._files()
        if name not in _snapshot.names(data):
            raise UserErrorException("File {} not found in run {}; get_file_names() lists them".format(name, self.id))
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            _snapshot.extract(data, tmp, members={name})
            src = os.path.join(tmp, name)
            dest = output_file_path or os.path.basename(name)
            if os.path.isdir(dest):
                dest = os.path.join(dest, os.path.basename(name))
            os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
            shutil.copyfile(src, dest)
        return dest

    def download_files(self, prefix=None, output_directory=None, output_paths=None, batch_size=100,
                       append_prefix=True, timeout_seconds=None):
        """Downloads the run's files under prefix (all when None) into output_directory."""
        data = self._files()
        names = [n for n in _snapshot.names(data) if prefix is None or n.startswith(prefix)]
        dest = output_directory or os.getcwd()
        if append_prefix or not prefix:
            _snapshot.extract(data, dest, members=set(names))
        else:
            import tempfile
            with tempfile.TemporaryDirectory() as tmp:
                _snapshot.extract(data, tmp, members=set(names))
                for n in names:
                    rel = n[len(prefix):].lstrip("/")
                    target = os.path.join(dest, rel)
                    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
                    shutil.copyfile(os.path.join(tmp, n), target)
        return names

    def upload_file(self, name, path_or_stream, datastore_name=None):
        """Inside a run: writes the file into ./outputs (uploaded with the run).

        name "outputs/x" or "logs/x" is taken as is; any other name goes under outputs/.
        """
        if not self._live:
            raise not_supported("Uploading files to a run from outside it", ExperimentExecutionException,
                                hint="write to ./outputs inside the run")
        rel = name if name.startswith(("outputs/", "logs/")) else os.path.join("outputs", name)
        dest = os.path.abspath(rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if isinstance(path_or_stream, (str, os.PathLike)):
            if os.path.abspath(path_or_stream) != dest:
                shutil.copyfile(path_or_stream, dest)
        else:
            with open(dest, "wb") as f:
                shutil.copyfileobj(path_or_stream, f)
        return dest

    def upload_folder(self, name, path, datastore_name=None):
        for dirpath, _, files in os.walk(path):
            for f in files:
                full = os.path.join(dirpath, f)
                self.upload_file(os.path.join(name, os.path.relpath(full, path)), full)

    def register_model(self, model_name, model_path=None, tags=None, properties=None, model_framework=None,
                       model_framework_version=None, description=None, datasets=None, sample_input_dataset=None,
                       sample_output_dataset=None, resource_configuration=None, **kwargs):
        """Registers model_path (a file or folder among the run's files) as model_name's next version."""
        from .model import Model
        return Model._register_from_run(self, model_name, model_path, tags, properties, description,
                                        model_framework, model_framework_version, datasets,
                                        sample_input_dataset, sample_output_dataset, resource_configuration)

    def complete(self, _set_status=True):
        """No-op: the run completes when the script exits 0."""

    def fail(self, error_details=None, error_code=None, _set_status=True):
        raise not_supported("Failing a run from its script (fail); exit non-zero instead",
                            ExperimentExecutionException)

    def get_portal_url(self):
        return "{}/api/v1{}{}".format(self._client.url, self._client.ws_path(""), self._path)

    @classmethod
    def get_context(cls, allow_offline=True, used_for_context_manager=False, **kwargs):
        """The run this script runs as (from HANGAR_URL, HANGAR_WORKSPACE, HANGAR_RUN_ID,
        HANGAR_TOKEN), or an offline run that prints when outside Hangar."""
        run_id = os.environ.get("HANGAR_RUN_ID")
        url = os.environ.get("HANGAR_URL")
        if not run_id or not url:
            if not allow_offline:
                raise UserErrorException("Run.get_context: not inside a Hangar run (HANGAR_RUN_ID is not set)")
            return _OfflineRun()
        from .experiment import Experiment
        from .workspace import Workspace
        ws = Workspace(url=url, token=os.environ.get("HANGAR_TOKEN", ""),
                       name=os.environ.get("HANGAR_WORKSPACE") or "default")
        exp = Experiment(ws, os.environ.get("HANGAR_EXPERIMENT") or "default")
        return cls(exp, run_id, _live=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _OfflineRun(Run):
    """The run outside Hangar: logging prints instead."""

    def __init__(self):
        self.experiment = None
        self._id = "OfflineRun_" + str(int(time.time() * 1000))
        self._doc = {"status": "Running"}
        self._live = False

    def __repr__(self):
        return "_OfflineRun(Id: {})".format(self._id)

    def _post_metrics(self, metrics):
        for m in metrics:
            v = m.get("value", m.get("text"))
            kind = "scalar" if "value" in m else "text"
            print("Attempted to log {} metric {}:\n{}".format(kind, m["name"], v))

    def tag(self, key, value=None):
        print("Attempted to set tag {}:\n{}".format(key, value))

    def upload_file(self, name, path_or_stream, datastore_name=None):
        print("Attempted to upload file {}".format(name))

    def get_metrics(self, *a, **kw):
        return {}

    def get_status(self):
        return "Running"

    def complete(self, _set_status=True):
        pass

    def fail(self, error_details=None, error_code=None, _set_status=True):
        pass
