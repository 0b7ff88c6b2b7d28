"""RemoteCompute (not supported by this server yet; see _unsupported)."""

from ._unsupported import RemoteCompute  # noqa: F401
