"""Distributed-job configurations (azureml.core.runconfig). Multi-node and
multi-process runs are refused by this server for now, so submitting a run
with one of them raises "not supported by this server yet"."""

from ..exceptions import RunConfigurationException


class MpiConfiguration:
    def __init__(self, process_count_per_node=1, node_count=1):
        self.process_count_per_node = process_count_per_node
        self.node_count = node_count


class PyTorchConfiguration:
    def __init__(self, communication_backend="Nccl", process_count=None, node_count=1):
        if communication_backend not in ("Nccl", "Gloo"):
            raise RunConfigurationException(
                "communication_backend must be 'Nccl' or 'Gloo', not {!r}".format(communication_backend))
        self.communication_backend = communication_backend
        self.process_count = process_count
        self.node_count = node_count


class TensorflowConfiguration:
    def __init__(self, worker_count=1, parameter_server_count=1):
        self.worker_count = worker_count
        self.parameter_server_count = parameter_server_count
        self.node_count = worker_count + parameter_server_count


class DockerConfiguration:
    def __init__(self, use_docker=None, shm_size=None, shared_volumes=None, arguments=None):
        self.use_docker = use_docker
        self.shm_size = shm_size
        self.shared_volumes = shared_volumes
        self.arguments = arguments


class RunConfiguration:
    """Kept for imports; passing one to ScriptRunConfig is refused."""

    def __init__(self, script=None, arguments=None, framework=None, communicator=None, conda_dependencies=None,
                 _history_enabled=None, _path=None, _name=None, command=None):
        self.script = script
        self.arguments = arguments
        self.target = "local"
        self.environment = None
        self.node_count = 1


DISTRIBUTED_CONFIGS = (MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration)
