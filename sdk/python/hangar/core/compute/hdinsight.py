"""HDInsightCompute (not supported by this server yet; see _unsupported)."""

from ._unsupported import HDInsightCompute  # noqa: F401
