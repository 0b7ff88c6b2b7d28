"""KustoCompute (not supported by this server yet; see _unsupported)."""

from ._unsupported import KustoCompute  # noqa: F401
