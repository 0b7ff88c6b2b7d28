import json
import os
import tempfile
import unittest
from unittest import mock

import _harness

from hangar.core import Workspace
from hangar.exceptions import UserErrorException

_CLEAN = {k: v for k, v in os.environ.items() if not k.startswith("HANGAR_")}


class WorkspaceTest(unittest.TestCase):
    def setUp(self):
        self.srv = _harness.server()
        self.dir = tempfile.mkdtemp()
        self.home = tempfile.mkdtemp()
        self.cwd = os.getcwd()
        os.chdir(self.dir)
        self.addCleanup(os.chdir, self.cwd)

    def write(self, path, doc):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(doc, f)

    def env(self, **kw):
        e = dict(_CLEAN, HOME=self.home)
        e.update(kw)
        return mock.patch.dict(os.environ, e, clear=True)

    def test_explicit(self):
        ws = Workspace(url=self.srv.url + "/", token=self.srv.token, name="default")
        self.assertEqual(ws.url, self.srv.url)
        self.assertNotIn(self.srv.token, repr(ws))
        self.assertIn("local", ws.compute_targets)
        self.assertEqual(ws._workspace_id, Workspace(self.srv.url, "x")._workspace_id)
        self.assertEqual(len(ws._workspace_id), 36)
        self.assertEqual(ws.get_details()["name"], "default")

    def test_from_config_search_order(self):
        good = {"url": self.srv.url, "token": self.srv.token, "workspace": "default"}
        with self.env():
            with self.assertRaises(UserErrorException) as cm:
                Workspace.from_config()
            self.assertIn("could not find a config file", str(cm.exception))
            self.write(os.path.join(self.home, ".hangar", "config.json"), dict(good, workspace="home"))
            self.assertEqual(Workspace.from_config().name, "home")
            self.write(os.path.join(self.dir, ".hangar", "config.json"), dict(good, workspace="dot"))
            self.assertEqual(Workspace.from_config().name, "dot")
            # A ./config.json of another program (no url, no token) is skipped.
            self.write(os.path.join(self.dir, "config.json"), {"something": "else"})
            self.assertEqual(Workspace.from_config().name, "dot")
            self.write(os.path.join(self.dir, "config.json"), dict(good, workspace="cwd"))
            ws = Workspace.from_config()
            self.assertEqual(ws.name, "cwd")
            with self.env(HANGAR_WORKSPACE="default"):
                self.assertIn("local", Workspace.from_config().compute_targets)
            # A path names a file or a directory.
            self.assertEqual(Workspace.from_config(os.path.join(self.home, ".hangar", "config.json")).name, "home")
            self.assertEqual(Workspace.from_config(os.path.join(self.home, ".hangar")).name, "home")

    def test_env_wins(self):
        path = os.path.join(self.dir, ".hangar", "config.json")
        self.write(path, {"url": self.srv.url, "token": self.srv.token, "workspace": "file"})
        with self.env(HANGAR_WORKSPACE="envws", HANGAR_TOKEN="envtoken"):
            ws = Workspace.from_config()
            self.assertEqual((ws.name, ws._client.token), ("envws", "envtoken"))
        # Another server's URL drops the file's token.
        with self.env(HANGAR_URL="http://127.0.0.1:1"):
            ws = Workspace.from_config()
            self.assertFalse(ws._client.token)
            self.assertEqual(ws.name, "default")

    def test_write_config_roundtrip(self):
        ws = Workspace(url=self.srv.url, token=self.srv.token)
        path = ws.write_config()
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with self.env():
            self.assertEqual(Workspace.from_config(), ws)

    def test_bad_config(self):
        self.write(os.path.join(self.dir, ".hangar", "x"), {})
        with open(os.path.join(self.dir, ".hangar", "config.json"), "w") as f:
            f.write("{not json")
        with self.env():
            with self.assertRaises(UserErrorException):
                Workspace.from_config()


if __name__ == "__main__":
    unittest.main()
