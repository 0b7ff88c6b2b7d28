"""DataFactoryCompute (not supported by this server yet; see _unsupported)."""

from ._unsupported import DataFactoryCompute  # noqa: F401
