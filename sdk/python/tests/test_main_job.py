import os
import subprocess
import unittest

import _harness

PY = "/usr/bin/python3"  # Debian's python3-sklearn installs for this interpreter


class MainJobTest(unittest.TestCase):
    """examples/digits/main_job.py end to end: cluster, run, model, key-auth service, scoring."""

    def test_main_job(self):
        if not os.path.exists(PY) or subprocess.run([PY, "-c", "import sklearn"], capture_output=True).returncode:
            self.skipTest("{} has no scikit-learn (apt-get install python3-sklearn)".format(PY))
        s = _harness.server()
        env = dict(os.environ, HANGAR_URL=s.url, HANGAR_TOKEN=s.token, HANGAR_WORKSPACE="default",
                   PYTHONPATH=_harness.SDK)
        with_cwd = os.path.join(s.tmp, "mainjob")
        os.makedirs(with_cwd, exist_ok=True)
        r = subprocess.run([PY, os.path.join(_harness.REPO, "examples", "digits", "main_job.py")], env=env,
                           cwd=with_cwd, capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        last = r.stdout.strip().splitlines()[-1]
        self.assertTrue(last.startswith("accuracy: "), last)
        self.assertGreater(float(last.split()[1]), 0.9)
        self.assertIn("Minimum number of nodes requested have been provisioned", r.stdout)
        self.assertIn("deleted the service and the cluster", r.stdout)


if __name__ == "__main__":
    unittest.main()
