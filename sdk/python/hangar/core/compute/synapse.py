"""SynapseCompute (not supported by this server yet; see _unsupported)."""

from ._unsupported import SynapseCompute  # noqa: F401
