"""DatabricksCompute (not supported by this server yet; see _unsupported)."""

from ._unsupported import DatabricksCompute  # noqa: F401
