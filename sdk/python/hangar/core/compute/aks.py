"""AksCompute (not supported by this server yet; see _unsupported)."""

from ._unsupported import AksCompute  # noqa: F401
