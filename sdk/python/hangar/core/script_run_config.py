"""ScriptRunConfig: what to run, where (azureml.core.ScriptRunConfig)."""

import shlex

from ..exceptions import RunConfigurationException, not_supported
from .runconfig import DISTRIBUTED_CONFIGS, RunConfiguration


class ScriptRunConfig:
    """A script (or command) in source_directory, run on compute_target
    (a ComputeTarget, its name, or None/"local" for the server's host)."""

    def __init__(self, source_directory, script=None, arguments=None, run_config=None, _telemetry_values=None,
                 compute_target=None, environment=None, distributed_job_config=None, resume_from=None,
                 max_run_duration_seconds=2592000, command=None, docker_runtime_config=None):
        if script and command:
            raise RunConfigurationException("Only one of script and command can be given, not both.")
        if command and arguments:
            raise RunConfigurationException("arguments cannot be used with command; put them in the command.")
        if distributed_job_config is not None and not isinstance(distributed_job_config, DISTRIBUTED_CONFIGS):
            raise RunConfigurationException(
                "distributed_job_config must be MpiConfiguration, PyTorchConfiguration or TensorflowConfiguration, "
                "not {}".format(type(distributed_job_config).__name__))
        if run_config is not None and not isinstance(run_config, RunConfiguration):
            raise RunConfigurationException("run_config must be a RunConfiguration")
        self.source_directory = source_directory
        self.script = script
        self.arguments = list(arguments) if arguments else []
        self.command = command
        self.run_config = run_config
        self.compute_target = compute_target
        self.environment = environment
        self.distributed_job_config = distributed_job_config
        self.resume_from = resume_from
        self.max_run_duration_seconds = max_run_duration_seconds
        self.docker_runtime_config = docker_runtime_config

    def _body(self):
        """The POST /runs body, less snapshot_digest and experiment."""
        if self.distributed_job_config is not None:
            raise not_supported("Distributed training ({}): multi-process and multi-node runs".format(
                type(self.distributed_job_config).__name__), RunConfigurationException)
        if self.run_config is not None:
            raise not_supported("run_config (RunConfiguration)", RunConfigurationException,
                                hint="pass compute_target and environment to ScriptRunConfig")
        if self.resume_from is not None:
            raise not_supported("resume_from", RunConfigurationException)
        if self.docker_runtime_config is not None and getattr(self.docker_runtime_config, "use_docker", None):
            raise not_supported("Docker runs (docker_runtime_config)", RunConfigurationException)
        if not self.script and not self.command:
            raise RunConfigurationException("script or command is required")
        target = self.compute_target
        if target is None:
            target = "local"
        elif not isinstance(target, str):
            target = target.name
        body = {"compute": target}
        if self.script:
            body["script"] = self.script
            body["args"] = [str(a) for a in self.arguments]
        else:
            body["command"] = self.command if isinstance(self.command, str) else " ".join(
                shlex.quote(str(c)) for c in self.command)
        if self.max_run_duration_seconds:
            body["max_run_duration_seconds"] = int(self.max_run_duration_seconds)
        if self.environment is not None:
            ref, spec = self.environment._ref()
            if ref:
                body["environment"] = ref
            else:
                body["environment_spec"] = spec
        return body
