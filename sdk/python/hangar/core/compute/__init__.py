"""Compute targets (azureml.core.compute): clusters, and the kinds to come."""

from .compute import (ComputeTarget, ComputeTargetAttachConfiguration,  # noqa: F401
                      ComputeTargetProvisioningConfiguration, ComputeTargetUpdateConfiguration)
from .amlcompute import (AmlCompute, AmlComputeNodeStateCounts,  # noqa: F401
                         AmlComputeProvisioningConfiguration, AmlComputeStatus, ScaleSettings)
from ._unsupported import (AdlaCompute, AksCompute, BatchCompute, ComputeInstance,  # noqa: F401
                           DatabricksCompute, DataFactoryCompute, HDInsightCompute, KubernetesCompute,
                           KustoCompute, RemoteCompute, SynapseCompute)
