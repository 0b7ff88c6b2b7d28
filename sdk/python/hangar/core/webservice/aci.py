"""AciWebservice: Azure Container Instances services (not supported by this server yet)."""

from ...exceptions import WebserviceException, not_supported
from .webservice import Webservice


class AciWebservice(Webservice):
    _webservice_type = "ACI"

    @staticmethod
    def deploy_configuration(*args, **kwargs):
        raise not_supported("Container-instance services (AciWebservice.deploy_configuration)", WebserviceException,
                            hint="use LocalWebservice.deploy_configuration(port=None, auth_enabled=True)")
