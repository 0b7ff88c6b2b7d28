import io
import os
import tempfile
import textwrap
import unittest
from contextlib import redirect_stdout
from unittest import mock

import _harness

from hangar.core import Model
from hangar.core.model import InferenceConfig
from hangar.core.webservice import AciWebservice, AksWebservice, LocalWebservice, Webservice
from hangar.exceptions import WebserviceException

SCORE = textwrap.dedent('''
    import json
    from hangar.core import Model
    factor = None

    def init():
        global factor
        with open(Model.get_model_path("{name}")) as f:
            factor = float(f.read())

    def run(raw_data):
        data = json.loads(raw_data)["data"]
        if data == "boom":
            raise ValueError("boom")
        return [x * factor for x in data]
''')


class ModelServiceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ws = _harness.workspace()
        cls.tmp = tempfile.mkdtemp()
        cls.name = _harness.unique("factor")
        cls.model_file = os.path.join(cls.tmp, "factor.txt")
        with open(cls.model_file, "w") as f:
            f.write("2")
        cls.src = os.path.join(cls.tmp, "src")
        os.makedirs(cls.src)
        with open(os.path.join(cls.src, "score.py"), "w") as f:
            f.write(SCORE.format(name=cls.name))

    def test_register_get_download(self):
        name = _harness.unique("reg")
        out = io.StringIO()
        with redirect_stdout(out):
            m = Model.register(self.ws, self.model_file, name, tags={"a": 1}, properties={"p": "q"},
                               description="desc")
        self.assertIn("Registering model", out.getvalue())
        self.assertEqual((m.name, m.tags, m.properties, m.description), (name, {"a": "1"}, {"p": "q"}, "desc"))
        m2 = Model.register(self.ws, self.model_file, name)
        self.assertEqual(m2.version, m.version + 1)
        self.assertEqual(Model(self.ws, name).version, m2.version)
        self.assertEqual(Model(self.ws, name, version=m.version).id, m.id)
        self.assertEqual(Model(self.ws, id=m.id).version, m.version)
        self.assertIn(name, self.ws.models)
        self.assertEqual([x.version for x in Model.list(self.ws, name=name)], [m2.version, m.version])
        self.assertEqual(len(Model.list(self.ws, name=name, latest=True)), 1)
        self.assertEqual(len(Model.list(self.ws, name=name, tags={"a": "1"})), 1)
        with tempfile.TemporaryDirectory() as d:
            p = m.download(d)
            with open(p) as f:
                self.assertEqual(f.read(), "2")
            with self.assertRaises(WebserviceException):
                m.download(d)
            m.download(d, exist_ok=True)
        # A folder model keeps its tree.
        folder = os.path.join(self.tmp, "dirmodel")
        os.makedirs(os.path.join(folder, "sub"))
        with open(os.path.join(folder, "sub", "w.txt"), "w") as f:
            f.write("w")
        fm = Model.register(self.ws, folder, name + "-dir")
        with tempfile.TemporaryDirectory() as d:
            self.assertTrue(os.path.isfile(os.path.join(fm.download(d), "sub", "w.txt")))
        # get_model_path outside a service downloads into ./azureml-models.
        cwd = os.getcwd()
        with tempfile.TemporaryDirectory() as d:
            os.chdir(d)
            try:
                p = Model.get_model_path(name, _workspace=self.ws)
                self.assertEqual(p, os.path.join(d, "azureml-models", name, str(m2.version), "factor.txt"))
                self.assertEqual(Model.get_model_path(name, version=m2.version), p)  # cached
            finally:
                os.chdir(cwd)

    def test_register_errors(self):
        with self.assertRaises(WebserviceException) as cm:
            Model.register(self.ws, "/no/such/path", "x")
        self.assertIn('Error, provided model path "/no/such/path" cannot be found', str(cm.exception))
        with self.assertRaises(WebserviceException):
            Model.register(self.ws, self.model_file, "x", model_framework_version="1.0")
        with self.assertRaises(WebserviceException) as cm:
            Model.register(self.ws, self.model_file, "x", child_paths=["a"])
        self.assertIn("not supported by this server yet", str(cm.exception))
        with self.assertRaises(WebserviceException) as cm:
            Model(self.ws, "no-such-model")
        self.assertIn("ModelNotFound", str(cm.exception))
        with self.assertRaises(WebserviceException) as cm:
            Model.register(self.ws, self.model_file, "bad name!")
        self.assertEqual(cm.exception.status_code, 400)

    def test_get_model_path_in_service_layout(self):
        with tempfile.TemporaryDirectory() as d:
            one = os.path.join(d, "models", "m1", "3")
            os.makedirs(one)
            open(os.path.join(one, "model.pkl"), "w").close()
            with mock.patch.dict(os.environ, {"AZUREML_MODEL_DIR": one}):
                self.assertEqual(Model.get_model_path("m1"), os.path.join(one, "model.pkl"))
                with self.assertRaises(WebserviceException):
                    Model.get_model_path("other")
            two = os.path.join(d, "models", "m2", "1")
            os.makedirs(two)
            open(os.path.join(two, "a"), "w").close()
            open(os.path.join(two, "b"), "w").close()
            with mock.patch.dict(os.environ, {"AZUREML_MODEL_DIR": os.path.join(d, "models")}):
                self.assertEqual(Model.get_model_path("m1"), os.path.join(one, "model.pkl"))
                self.assertEqual(Model.get_model_path("m2", version=1), two)
                with self.assertRaises(WebserviceException):
                    Model.get_model_path("m2", version=7)

    def test_inference_config_checks(self):
        with self.assertRaises(WebserviceException) as cm:
            InferenceConfig(entry_script="score.r", source_directory=self.src)
        self.assertIn("Invalid driver type. Currently only Python drivers are supported.", str(cm.exception))
        with self.assertRaises(WebserviceException):
            InferenceConfig(entry_script="missing.py", source_directory=self.src)
        with self.assertRaises(WebserviceException) as cm:
            InferenceConfig(entry_script="score.py", source_directory=self.src, conda_file="env.yml")
        self.assertIn("not supported by this server yet", str(cm.exception))
        for call in (AciWebservice.deploy_configuration, AksWebservice.deploy_configuration):
            with self.assertRaises(WebserviceException) as cm:
                call(cpu_cores=1, memory_gb=1)
            self.assertIn("not supported by this server yet", str(cm.exception))

    def test_deploy_lifecycle(self):
        model = Model.register(self.ws, self.model_file, self.name)
        ic = InferenceConfig(entry_script="score.py", source_directory=self.src)
        svc_name = "svc-" + _harness.unique("s")
        with self.assertRaises(WebserviceException):
            Model.deploy(self.ws, svc_name, [model], ic)  # no deployment_config: ACI in Azure ML
        with self.assertRaises(WebserviceException):
            Model.deploy(self.ws, svc_name, [model], None, LocalWebservice.deploy_configuration())
        svc = Model.deploy(self.ws, svc_name, [model], ic, LocalWebservice.deploy_configuration(auth_enabled=True))
        self.assertIsInstance(svc, LocalWebservice)
        out = io.StringIO()
        with redirect_stdout(out):
            svc.wait_for_deployment(show_output=True)
        self.assertEqual(svc.state, "Healthy")
        self.assertTrue(svc.scoring_uri.endswith("/score"))
        self.assertTrue(svc.swagger_uri.endswith("/swagger.json"))
        self.assertTrue(svc.auth_enabled)
        self.assertEqual(svc.run({"data": [1, 2]}), [2.0, 4.0])
        self.assertEqual(svc.run('{"data": [3]}'), [6.0])
        with self.assertRaises(WebserviceException) as cm:
            svc.run({"data": "boom"})
        self.assertEqual(cm.exception.status_code, 500)
        self.assertIn("boom", str(cm.exception))
        self.assertIsInstance(svc.get_logs(), str)
        k1, k2 = svc.get_keys()
        self.assertTrue(k1 and k2 and k1 != k2)
        svc.regen_key("Primary")
        self.assertNotEqual(svc.get_keys()[0], k1)
        self.assertEqual(svc.run({"data": [1]}), [2.0])  # picks up the new key
        with self.assertRaises(WebserviceException):
            svc.regen_key("tertiary")
        with self.assertRaises(WebserviceException):
            svc.get_token()
        again = Webservice(self.ws, svc_name)
        self.assertIsInstance(again, LocalWebservice)
        self.assertEqual(again.scoring_uri, svc.scoring_uri)
        self.assertIn(svc_name, self.ws.webservices)
        self.assertEqual(svc.serialize()["name"], svc_name)
        # Deploying over it needs overwrite.
        with self.assertRaises(WebserviceException) as cm:
            Model.deploy(self.ws, svc_name, [model], ic, LocalWebservice.deploy_configuration())
        self.assertEqual(cm.exception.status_code, 409)
        # Update: a new model version with factor 3.
        os.makedirs(os.path.join(self.tmp, "v3"), exist_ok=True)
        with open(os.path.join(self.tmp, "v3", "factor.txt"), "w") as f:
            f.write("3")
        m3 = Model.register(self.ws, os.path.join(self.tmp, "v3", "factor.txt"), self.name)
        svc.update(models=[m3])
        svc.wait_for_deployment()
        self.assertEqual(svc.run({"data": [1]}), [3.0])
        with self.assertRaises(WebserviceException):
            svc.update()
        with self.assertRaises(WebserviceException):
            svc.update(port=1234)
        svc.delete()
        with self.assertRaises(WebserviceException) as cm:
            Webservice(self.ws, svc_name)
        self.assertIn("WebserviceNotFound", str(cm.exception))
        out = io.StringIO()
        with redirect_stdout(out):
            svc.delete()
        self.assertIn("No service with name", out.getvalue())


if __name__ == "__main__":
    unittest.main()
