"""AdlaCompute (not supported by this server yet; see _unsupported)."""

from ._unsupported import AdlaCompute  # noqa: F401
