"""CondaDependencies: only pip packages are honoured (nodes use a given interpreter)."""

from ..exceptions import UserErrorException, not_supported


class CondaDependencies:
    """The packages of an environment. Hangar checks pip requirements against the
    environment's interpreter before a run starts; it does not install anything
    and has no conda, so conda packages are refused."""

    def __init__(self, conda_dependencies_file_path=None, _underlying_structure=None):
        if conda_dependencies_file_path is not None:
            raise not_supported("Conda environment files (CondaDependencies(path))", UserErrorException,
                                hint="use Environment.from_pip_requirements(name, 'requirements.txt')")
        self._pip = []

    @staticmethod
    def create(pip_packages=None, conda_packages=None, python_version=None, pin_sdk_version=True,
               pip_indexurl=None):
        if conda_packages:
            raise not_supported("Conda packages ({})".format(", ".join(conda_packages)), UserErrorException,
                                hint="list them as pip_packages; the interpreter must already have them")
        cd = CondaDependencies()
        for p in pip_packages or []:
            cd.add_pip_package(p)
        return cd

    def add_pip_package(self, pip_package):
        if pip_package.startswith("azureml") or pip_package.startswith("hangar"):
            return  # the SDK is provided by Hangar itself
        if pip_package not in self._pip:
            self._pip.append(pip_package)

    def remove_pip_package(self, pip_package):
        self._pip = [p for p in self._pip if p != pip_package]

    def add_conda_package(self, conda_package):
        raise not_supported("Conda packages ({})".format(conda_package), UserErrorException)

    @property
    def pip_packages(self):
        return list(self._pip)

    def serialize_to_string(self):
        return "dependencies:\n- pip:\n" + "".join("  - {}\n".format(p) for p in self._pip)
