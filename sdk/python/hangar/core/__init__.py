"""The core of the SDK (azureml.core): workspace, experiments, runs, environments, models."""

from .workspace import Workspace  # noqa: F401
from .experiment import Experiment  # noqa: F401
from .script_run_config import ScriptRunConfig  # noqa: F401
from .run import Run  # noqa: F401
from .environment import Environment  # noqa: F401
from .model import Model, InferenceConfig  # noqa: F401
from .runconfig import RunConfiguration  # noqa: F401
from .compute import ComputeTarget  # noqa: F401
from .webservice import Webservice  # noqa: F401
