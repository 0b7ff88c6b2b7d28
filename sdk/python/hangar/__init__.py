"""Hangar's Python SDK, shaped like Azure ML's v1 SDK (azureml-core).

Scripts written for azureml-core run after changing their imports and the
workspace line: ``from azureml.core import Workspace`` becomes
``from hangar.core import Workspace``. It uses only the standard library and
speaks Hangar's REST API (/api/v1); see sdk/python/README.md.
"""

__version__ = "0.1.0"
