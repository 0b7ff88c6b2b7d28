"""Compute kinds this server does not provide yet.

Their classes exist so that v1 scripts import and type-check; every
configuration, attach and create raises ComputeTargetException saying the kind
is not supported by this server yet. Loading or listing a compute of such a
kind (once a server has it) gives the class with the common attributes.
"""

from ...exceptions import ComputeTargetException, not_supported
from .compute import ComputeTarget, _register

_HINT = "use AmlCompute (a cluster; min_nodes=1 keeps a node up) until this kind is built"


def _refuse(kind, op):
    raise not_supported("{} ({}.{})".format(_KIND_TEXT.get(kind, kind), kind, op), ComputeTargetException, hint=_HINT)


_KIND_TEXT = {
    "ComputeInstance": "Compute instances",
    "RemoteCompute": "Remote virtual machines",
    "HDInsightCompute": "HDInsight clusters",
    "BatchCompute": "Azure Batch",
    "DatabricksCompute": "Databricks",
    "AdlaCompute": "Data Lake Analytics",
    "AksCompute": "Kubernetes (AKS) clusters",
    "KubernetesCompute": "Kubernetes clusters",
    "SynapseCompute": "Synapse Spark pools",
    "DataFactoryCompute": "Data Factory",
    "KustoCompute": "Kusto",
}


class _Unsupported(ComputeTarget):
    _delete_rule = None  # "detach" or "delete" when the other is refused in v1

    @classmethod
    def provisioning_configuration(cls, *args, **kwargs):
        _refuse(cls.__name__, "provisioning_configuration")

    @classmethod
    def attach_configuration(cls, *args, **kwargs):
        _refuse(cls.__name__, "attach_configuration")

    @classmethod
    def attach(cls, *args, **kwargs):
        _refuse(cls.__name__, "attach")

    @classmethod
    def _create(cls, workspace, name, config):
        _refuse(cls.__name__, "create")

    def delete(self, *args, **kwargs):
        if self._delete_rule == "detach":
            raise ComputeTargetException(
                "Delete is not supported for {} object. Try to use detach instead.".format(self._v1_delete_name))
        _refuse(type(self).__name__, "delete")

    def detach(self):
        if self._delete_rule == "delete":
            raise ComputeTargetException(
                "Detach is not supported for {} object. Try to use delete instead.".format(type(self).__name__))
        _refuse(type(self).__name__, "detach")

    def get_credentials(self):
        _refuse(type(self).__name__, "get_credentials")

    _v1_delete_name = None


class ComputeInstance(_Unsupported):
    """A single-user development machine (not supported by this server yet)."""
    _compute_type = "ComputeInstance"
    _delete_rule = "delete"

    def start(self, wait_for_completion=False, show_output=False):
        _refuse("ComputeInstance", "start")

    def stop(self, wait_for_completion=False, show_output=False):
        _refuse("ComputeInstance", "stop")

    def restart(self, wait_for_completion=False, show_output=False):
        _refuse("ComputeInstance", "restart")

    @staticmethod
    def supported_vmsizes(workspace, location=None):
        from .amlcompute import AmlCompute
        return AmlCompute.supported_vmsizes(workspace, location)


class RemoteCompute(_Unsupported):
    """A machine you own, reached over SSH (not supported by this server yet)."""
    _compute_type = "VirtualMachine"
    _delete_rule = "detach"
    _v1_delete_name = "RemoteCompute"


class HDInsightCompute(_Unsupported):
    _compute_type = "HDInsight"
    _delete_rule = "detach"
    _v1_delete_name = "HDInsightCompute"


class BatchCompute(_Unsupported):
    _compute_type = "Batch"
    _delete_rule = "detach"
    _v1_delete_name = "Batch"


class DatabricksCompute(_Unsupported):
    _compute_type = "Databricks"
    _delete_rule = "detach"
    _v1_delete_name = "Databricks"


class AdlaCompute(_Unsupported):
    _compute_type = "DataLakeAnalytics"


class AksCompute(_Unsupported):
    _compute_type = "AKS"

    class ClusterPurpose:
        FAST_PROD = "FastProd"
        DEV_TEST = "DevTest"


class KubernetesCompute(_Unsupported):
    _compute_type = "Kubernetes"


class SynapseCompute(_Unsupported):
    _compute_type = "SynapseSpark"


class DataFactoryCompute(_Unsupported):
    _compute_type = "DataFactory"


class KustoCompute(_Unsupported):
    _compute_type = "Kusto"


_register(ComputeInstance, "instance", "computeinstance")
_register(RemoteCompute, "remote", "virtualmachine")
_register(KubernetesCompute, "kubernetes")
