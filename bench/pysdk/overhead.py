"""SDK overhead per call against the raw REST call it makes.

Starts a real server (the SDK tests' harness), creates a cluster, then times
N calls of each pair, interleaved in rounds so drift hits both alike:
  ComputeTarget(ws, name)  vs  urllib GET /computes/{name} + json.loads
  Run(exp, id).get_status() vs urllib GET /runs/{id} + json.loads
  Model(ws, name)          vs  urllib GET /models/{name} + json.loads
Prints the median per-call time of each and the difference (the overhead).

  HANGAR_BIN=/path/to/hangar python3 bench/pysdk/overhead.py [N]
"""
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python", "tests"))
import _harness  # noqa: E402

from hangar.core import Experiment, Model, Run  # noqa: E402
from hangar.core.compute import AmlCompute, ComputeTarget  # noqa: E402


def raw_get(url, token):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    ws = _harness.workspace()
    s = _harness.server()
    base = s.url + "/api/v1/workspaces/default"
    ComputeTarget.create(ws, "bench", AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=1))
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "m.txt"), "w") as f:
            f.write("m")
        Model.register(ws, os.path.join(d, "m.txt"), "benchmodel")
        with open(os.path.join(d, "t.py"), "w") as f:
            f.write("print(1)\n")
        from hangar.core import ScriptRunConfig
        run = Experiment(ws, "bench").submit(ScriptRunConfig(d, "t.py", compute_target="bench"))
        run.wait_for_completion()
    exp = Experiment(ws, "bench")
    pairs = [
        ("ComputeTarget(ws, name)", lambda: ComputeTarget(ws, "bench"),
         lambda: raw_get(base + "/computes/bench", s.token)),
        ("Run(exp, id).get_status()", lambda: Run(exp, run.id, _doc={"status": "x"}).get_status(),
         lambda: raw_get(base + "/runs/" + run.id, s.token)),
        ("Model(ws, name)", lambda: Model(ws, "benchmodel"),
         lambda: raw_get(base + "/models/benchmodel", s.token)),
    ]
    print("{} calls each, median per call".format(n))
    print("| call | SDK | raw urllib + json | overhead |")
    print("|---|---|---|---|")
    for name, sdk, raw in pairs:
        for _ in range(20):  # warm up
            sdk(), raw()
        a, b = [], []
        for _ in range(10):
            a += timed(sdk, n // 10)
            b += timed(raw, n // 10)
        ms, mr = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        print("| {} | {:.3f} ms | {:.3f} ms | {:+.3f} ms |".format(name, ms, mr, ms - mr))


if __name__ == "__main__":
    main()
