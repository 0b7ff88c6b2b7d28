"""azureml.core.compute_target: the home of ComputeTargetException in v1."""

from ..exceptions import ComputeTargetException  # noqa: F401
