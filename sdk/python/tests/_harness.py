"""A real hangar server for the SDK tests, started once per test process.

HANGAR_BIN names a built binary; without it the harness builds one with
`go build` into a temp dir. The server runs on a free 127.0.0.1 port with a
temp data dir; at exit it is stopped, and any agent or worker process still
running from that data dir is killed by pid.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(SDK))
sys.path.insert(0, SDK)

_server = None


class Server:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="hangar-sdk-test-")
        self.data = os.path.join(self.tmp, "data")
        bin_ = os.environ.get("HANGAR_BIN")
        if not bin_:
            bin_ = os.path.join(self.tmp, "hangar")
            subprocess.run(["go", "build", "-o", bin_, "./cmd/hangar"], cwd=REPO, check=True)
        self.bin = bin_
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.log = open(os.path.join(self.tmp, "server.log"), "wb")
        env = dict(os.environ)
        for k in ("HANGAR_URL", "HANGAR_TOKEN", "HANGAR_WORKSPACE", "HANGAR_RUN_ID"):
            env.pop(k, None)
        self.proc = subprocess.Popen([self.bin, "server", "--data-dir", self.data, "--addr",
                                      "127.0.0.1:{}".format(self.port)], stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/api/v1/health", timeout=2).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("hangar server did not start:\n" + self.logs())
                time.sleep(0.05)
        with open(os.path.join(self.data, "admin-token")) as f:
            self.token = f.read().strip()

    def logs(self):
        self.log.flush()
        with open(os.path.join(self.tmp, "server.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _kill_leftovers(self.data)
        self.log.close()
        if os.environ.get("HANGAR_TEST_KEEP"):
            print("kept", self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _kill_leftovers(marker):
    """Kills processes whose command line names marker (our data dir): leftover agents and workers."""
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open("/proc/{}/cmdline".format(pid), "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def server():
    global _server
    if _server is None:
        _server = Server()
        atexit.register(_server.stop)
    return _server


def workspace():
    from hangar.core import Workspace
    s = server()
    return Workspace(url=s.url, token=s.token, name="default")


def unique(prefix):
    unique.n += 1
    return "{}{}{}".format(prefix, os.getpid() % 1000, unique.n)


unique.n = 0
