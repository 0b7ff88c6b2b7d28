"""Web services (azureml.core.webservice)."""

from .webservice import Webservice  # noqa: F401
from .local import LocalWebservice, LocalWebserviceDeploymentConfiguration  # noqa: F401
from .aci import AciWebservice  # noqa: F401
from .aks import AksWebservice  # noqa: F401
