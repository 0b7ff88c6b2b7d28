import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import _harness  # noqa: F401  (puts the SDK on sys.path)

from hangar import _snapshot


class SnapshotTest(unittest.TestCase):
    def tree(self, files):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        for path, text in files.items():
            full = os.path.join(d, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        return d

    def test_ignore_rules(self):
        d = self.tree({
            ".gitignore": "*.log\nbuild/\n/top.txt\n!keep.log\n",
            ".amlignore": "data/\n",
            ".hangarignore": "secret.*\n",
            "a.py": "", "x.log": "", "keep.log": "", "top.txt": "", "sub/top.txt": "",
            "build/o": "", "data/d.csv": "", "secret.key": "", "sub/.gitignore": "*.tmp\n", "sub/t.tmp": "",
            "sub/deep/z.py": "", ".git/config": "",
        })
        names = [e[0] for e in _snapshot.list_files(d) if e[2] == "file"]
        self.assertEqual(sorted(names), [".amlignore", ".gitignore", ".hangarignore", "a.py", "keep.log",
                                         "sub/.gitignore", "sub/deep/z.py", "sub/top.txt"])

    def test_deterministic(self):
        d = self.tree({"a.py": "1", "b/c.py": "2"})
        first = _snapshot.write(d)
        os.utime(os.path.join(d, "a.py"), (1, 1))
        self.assertEqual(_snapshot.write(d), first)
        self.assertEqual(sorted(_snapshot.names(first)), ["a.py", "b/c.py"])

    def test_symlink_outside_refused(self):
        d = self.tree({"a.py": ""})
        os.symlink("/etc/passwd", os.path.join(d, "out"))
        with self.assertRaises(_snapshot.SnapshotException) as cm:
            _snapshot.write(d)
        self.assertIn("out is a symlink that leads outside", str(cm.exception))


class InstallTest(unittest.TestCase):
    """pip install --no-build-isolation ./sdk/python into a venv, offline."""

    def test_pip_install(self):
        # Building offline needs setuptools with bdist_wheel (the wheel package, or setuptools >= 70.1).
        probe_code = ("import venv, ensurepip, setuptools\n"
                      "try:\n    import wheel\nexcept ImportError:\n"
                      "    from setuptools.command import bdist_wheel\n")
        py, why = None, []
        for cand in (shutil.which("python3"), "/usr/bin/python3"):
            if not cand or not os.path.exists(cand):
                continue
            probe = subprocess.run([cand, "-c", probe_code], capture_output=True)
            if probe.returncode == 0:
                py = cand
                break
            why.append("{}: {}".format(cand, probe.stderr.decode().strip().splitlines()[-1:]))
        if py is None:
            self.skipTest("no interpreter with venv, ensurepip, setuptools and wheel: " + "; ".join(why))
        with tempfile.TemporaryDirectory() as d:
            venv = os.path.join(d, "venv")
            subprocess.run([py, "-m", "venv", "--system-site-packages", venv], check=True, capture_output=True)
            vpy = os.path.join(venv, "bin", "python")
            build = os.path.join(d, "src")
            shutil.copytree(_harness.SDK, build, ignore=shutil.ignore_patterns("__pycache__", "tests", "*.go",
                                                                                 "build", "*.egg-info"))
            env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
            env.pop("PYTHONPATH", None)
            r = subprocess.run([vpy, "-m", "pip", "install", "--no-build-isolation", "--no-deps", build],
                               capture_output=True, env=env, cwd=d)
            self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
            r = subprocess.run([vpy, "-c", "import hangar.core.compute as c, hangar; print(hangar.__file__)"],
                               capture_output=True, env=env, cwd=d)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertIn(venv, r.stdout.decode())


if __name__ == "__main__":
    unittest.main()
