import io
import os
import sys
import tempfile
import textwrap
import unittest
from contextlib import redirect_stdout
from unittest import mock

import _harness

from hangar.core import Environment, Experiment, Run, ScriptRunConfig
from hangar.core.compute import AmlCompute, ComputeTarget
from hangar.core.conda_dependencies import CondaDependencies
from hangar.core.runconfig import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration
from hangar.exceptions import (ActivityFailedException, ExperimentExecutionException, RunConfigurationException,
                               UserErrorException)

TRAIN = textwrap.dedent('''
    import os, sys
    from hangar.core import Run
    run = Run.get_context()
    print("args", sys.argv[1:], flush=True)
    run.log("acc", 0.5)
    run.log("acc", 0.75)
    run.log("loss", 1.25)
    run.log("name", "text")
    run.log_list("lst", [1, 2, 3])
    run.log_row("tbl", a=1, b="x")
    run.log_row("tbl", a=2, b="y")
    try:
        run.tag("k", "v")
    except Exception as e:
        print("tag:", e, flush=True)
    with open("model.bin", "wb") as f:
        f.write(b"weights")
    run.upload_file("model.bin", "model.bin")
    run.upload_file("outputs/sub/other.txt", "model.bin")
    print("MODELPATH", os.environ.get("PYTHONPATH"), flush=True)
    if "--fail" in sys.argv:
        sys.exit(3)
    if "--sleep" in sys.argv:
        import time; time.sleep(120)
''')


class RunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ws = _harness.workspace()
        cls.src = tempfile.mkdtemp()
        with open(os.path.join(cls.src, "train.py"), "w") as f:
            f.write(TRAIN)
        with open(os.path.join(cls.src, "big.dat"), "w") as f:
            f.write("ignored")
        with open(os.path.join(cls.src, ".amlignore"), "w") as f:
            f.write("*.dat\n")
        name = _harness.unique("runs")
        cls.ct = ComputeTarget.create(cls.ws, name, AmlCompute.provisioning_configuration(
            vm_size="STANDARD_D2_V2", max_nodes=2, idle_seconds_before_scaledown=300))
        cls.exp = Experiment(cls.ws, "sdk-test")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.ws._client.call("DELETE", "/computes/" + cls.ct.name, query={"force": "true"})
        except Exception:
            pass

    def submit(self, *args, **kw):
        return self.exp.submit(ScriptRunConfig(self.src, "train.py", arguments=list(args), compute_target=self.ct,
                                               **kw), tags={"t": 1})

    def test_run_end_to_end(self):
        run = self.submit("--lr", 0.1)
        self.assertIn(run.get_status(), ("Queued", "Preparing", "Running", "Completed"))
        out = io.StringIO()
        with redirect_stdout(out):
            details = run.wait_for_completion(show_output=True)
        text = out.getvalue()
        self.assertIn("args ['--lr', '0.1']", text)
        self.assertIn("not supported by this server yet", text)  # tag() inside the run
        self.assertIn("Execution Summary", text)
        self.assertEqual(details["status"], "Completed")
        self.assertEqual(details["runId"], run.id)
        self.assertEqual(details["target"], self.ct.name)
        self.assertEqual(details["tags"], {"t": "1"})
        self.assertEqual(details["runDefinition"]["arguments"], ["--lr", "0.1"])
        m = run.get_metrics()
        self.assertEqual(m["acc"], [0.5, 0.75])
        self.assertEqual(m["loss"], 1.25)
        self.assertEqual(m["name"], "text")
        self.assertEqual(m["lst"], [1, 2, 3])
        self.assertEqual(m["tbl"], {"a": [1, 2], "b": ["x", "y"]})
        self.assertEqual(run.get_metrics(name="loss"), {"loss": 1.25})
        names = run.get_file_names()
        self.assertIn("outputs/model.bin", names)
        self.assertIn("outputs/sub/other.txt", names)
        with tempfile.TemporaryDirectory() as d:
            p = run.download_file("outputs/model.bin", d)
            with open(p, "rb") as f:
                self.assertEqual(f.read(), b"weights")
            got = run.download_files(prefix="outputs", output_directory=d)
            self.assertIn("outputs/sub/other.txt", got)
            self.assertTrue(os.path.isfile(os.path.join(d, "outputs", "sub", "other.txt")))
            run.download_files(prefix="outputs/", output_directory=os.path.join(d, "flat"), append_prefix=False)
            self.assertTrue(os.path.isfile(os.path.join(d, "flat", "sub", "other.txt")))
        with self.assertRaises(UserErrorException):
            run.download_file("outputs/none")
        # The snapshot honoured .amlignore; the script saw the SDK on PYTHONPATH.
        self.assertIn("pysdk", run.get_log())
        model = run.register_model("sdk-run-model", model_path="outputs/model.bin", tags={"k": "v"})
        self.assertEqual((model.name, model.run_id, model.tags), ("sdk-run-model", run.id, {"k": "v"}))
        with self.assertRaises(Exception) as cm:
            run.register_model("sdk-run-model", model_path="outputs/missing.bin")
        self.assertTrue(cm.exception.field or "missing" in str(cm.exception))
        self.assertTrue(any(r.id == run.id for r in self.exp.get_runs()))
        self.assertEqual(Run(self.exp, run.id).status, "Completed")

    def test_failed_run_raises(self):
        run = self.submit("--fail")
        with self.assertRaises(ActivityFailedException) as cm:
            run.wait_for_completion()
        self.assertIn("exited with code 3", str(cm.exception))
        self.assertEqual(run.wait_for_completion(raise_on_error=False)["status"], "Failed")
        self.assertIn("error", run.get_details())

    def test_cancel(self):
        run = self.submit("--sleep")
        run.cancel()
        details = run.wait_for_completion(raise_on_error=False)
        self.assertEqual(details["status"], "Canceled")

    def test_submit_errors(self):
        with self.assertRaises(ExperimentExecutionException) as cm:
            self.exp.submit(ScriptRunConfig(self.src, "missing.py", compute_target=self.ct))
        self.assertEqual(cm.exception.status_code, 400)
        self.assertTrue(cm.exception.field)
        with self.assertRaises(ExperimentExecutionException) as cm:
            self.exp.submit(ScriptRunConfig(self.src, "train.py", compute_target="no-such-compute"))
        self.assertEqual(cm.exception.field, "compute")
        for cfg in (MpiConfiguration(node_count=2), PyTorchConfiguration(process_count=2, node_count=2),
                    TensorflowConfiguration(worker_count=2)):
            with self.assertRaises(RunConfigurationException) as cm:
                self.exp.submit(ScriptRunConfig(self.src, "train.py", compute_target=self.ct,
                                                distributed_job_config=cfg))
            self.assertIn("not supported by this server yet", str(cm.exception))
        with self.assertRaises(RunConfigurationException):
            ScriptRunConfig(self.src, "train.py", distributed_job_config=object())
        with self.assertRaises(RunConfigurationException):
            PyTorchConfiguration(communication_backend="MPI")
        with self.assertRaises(RunConfigurationException):
            ScriptRunConfig(self.src, "train.py", command=["python", "x.py"])
        with self.assertRaises(ExperimentExecutionException):
            Run(self.exp, "run-doesnotexist")

    def test_snapshot_limits(self):
        from hangar import _snapshot
        with tempfile.TemporaryDirectory() as d:
            for i in range(3):
                open(os.path.join(d, "f{}.py".format(i)), "w").close()
            with self.assertRaises(_snapshot.SnapshotException) as cm:
                _snapshot.write(d, max_files=2)
            self.assertIn("over the limit of 2", str(cm.exception))
            with open(os.path.join(d, "f0.py"), "w") as f:
                f.write("x" * 100)
            with self.assertRaises(_snapshot.SnapshotException) as cm:
                _snapshot.write(d, max_bytes=10)
            self.assertIn("Your total snapshot size exceeds the limit", str(cm.exception))

    def test_environment(self):
        env = Environment(_harness.unique("env"))
        env.python.interpreter_path = sys.executable
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=["azureml-defaults"])
        env.environment_variables = {"A": "1"}
        reg = env.register(self.ws)
        self.assertEqual(reg.version, 1)
        self.assertEqual(env.register(self.ws).version, 2)
        got = Environment.get(self.ws, env.name)
        self.assertEqual((got.version, got.python.interpreter_path, got.environment_variables), (2, sys.executable, {"A": "1"}))
        self.assertEqual(Environment.get(self.ws, env.name, version=1).version, 1)
        self.assertIn(env.name, self.ws.environments)
        with self.assertRaises(UserErrorException):
            Environment.get(self.ws, "no-such-env")
        with self.assertRaises(UserErrorException):
            CondaDependencies.create(conda_packages=["numpy"])
        # A run in a registered environment missing a requirement fails at setup, naming it.
        bad = Environment(_harness.unique("bad"))
        bad.python.conda_dependencies = CondaDependencies.create(pip_packages=["no-such-package-xyz"])
        run = self.exp.submit(ScriptRunConfig(self.src, "train.py", compute_target=self.ct, environment=bad))
        with self.assertRaises(ActivityFailedException) as cm:
            run.wait_for_completion()
        self.assertIn("no-such-package-xyz", str(cm.exception))
        # Registered environments are referenced by name:version.
        ok = self.exp.submit(ScriptRunConfig(self.src, "train.py", compute_target=self.ct, environment=reg))
        self.assertEqual(ok.wait_for_completion()["status"], "Completed")

    def test_offline_run(self):
        with mock.patch.dict(os.environ, {"HANGAR_RUN_ID": ""}):
            run = Run.get_context()
            out = io.StringIO()
            with redirect_stdout(out):
                run.log("accuracy", 0.9)
                run.tag("k", "v")
            self.assertIn("Attempted to log scalar metric accuracy:\n0.9", out.getvalue())
            self.assertEqual(run.get_metrics(), {})
            with self.assertRaises(UserErrorException):
                Run.get_context(allow_offline=False)

    def test_metrics_retry_while_server_unreachable(self):
        # Nothing listens on the port: posting retries, then gives up once the budget is spent.
        from hangar._client import _Client
        c = _Client("http://127.0.0.1:9", "t", "default")
        import time
        t0 = time.monotonic()
        with self.assertRaises(OSError):
            c.post_retrying("/runs/x/metrics", {"name": "a", "value": 1}, budget=1.5)
        self.assertGreater(time.monotonic() - t0, 1.0)


if __name__ == "__main__":
    unittest.main()
