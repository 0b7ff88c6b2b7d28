"""ComputeInstance (not supported by this server yet; see _unsupported)."""

from ._unsupported import ComputeInstance  # noqa: F401
