"""AksWebservice: Kubernetes services (not supported by this server yet)."""

from ...exceptions import WebserviceException, not_supported
from .webservice import Webservice


class AksWebservice(Webservice):
    _webservice_type = "AKS"

    @staticmethod
    def deploy_configuration(*args, **kwargs):
        raise not_supported("Kubernetes services (AksWebservice.deploy_configuration)", WebserviceException,
                            hint="use LocalWebservice.deploy_configuration(port=None, auth_enabled=True)")
