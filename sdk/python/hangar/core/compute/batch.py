"""BatchCompute (not supported by this server yet; see _unsupported)."""

from ._unsupported import BatchCompute  # noqa: F401
