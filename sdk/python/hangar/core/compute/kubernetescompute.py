"""KubernetesCompute (not supported by this server yet; see _unsupported)."""

from ._unsupported import KubernetesCompute  # noqa: F401
