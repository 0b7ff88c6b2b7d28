"""Exceptions raised by the SDK, named as in azureml.exceptions."""


class HangarException(Exception):
    """Base of every SDK error (azureml's AzureMLException).

    message is the text; when the error came from the server, status_code,
    code, field and hint carry its answer (field is the request field as the
    user wrote it, hint often a command to try).
    """

    def __init__(self, exception_message="", status_code=None, code=None, field=None, hint=None, **kwargs):
        super().__init__(exception_message)
        self.message = exception_message
        self.status_code = status_code
        self.code = code
        self.field = field
        self.hint = hint

    def __str__(self):
        text = self.message
        if self.field and not text.startswith(self.field + ":"):
            text = "{}: {}".format(self.field, text)
        if self.hint:
            text += "\nHint: " + self.hint
        return text


# azureml's name for the base class.
AzureMLException = HangarException


class UserErrorException(HangarException):
    """A mistake in what the caller asked for."""


class ComputeTargetException(HangarException):
    """An error about a compute target (also hangar.core.compute_target.ComputeTargetException)."""


class WebserviceException(HangarException):
    """An error about a model or a web service."""


class RunConfigurationException(HangarException):
    """An invalid run configuration."""


class ExperimentExecutionException(HangarException):
    """A run could not be submitted or followed."""


class ActivityFailedException(HangarException):
    """A run ended Failed or Canceled (raised by Run.wait_for_completion)."""

    def __init__(self, error_details="", **kwargs):
        super().__init__(error_details, **kwargs)
        self.error_details = error_details


class ServerError(HangarException):
    """An HTTP error from the server outside the calls that map to a domain exception."""


def not_supported(what, exc=HangarException, hint=None):
    """Returns the error raised for what the server does not support yet."""
    return exc("{} is not supported by this server yet.".format(what), code="NotSupported", hint=hint)
