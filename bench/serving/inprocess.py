"""Time run() called in-process: the floor the HTTP servers add to.

python3 inprocess.py SOURCE_DIR ENTRY BODY_FILE [N]  → "p50_ms p99_ms"
"""
import importlib.util
import os
import sys
import time

src, entry, body_file = sys.argv[1:4]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
sys.path.insert(0, src)
spec = importlib.util.spec_from_file_location("score", os.path.join(src, entry))
score = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score)
if hasattr(score, "init"):
    score.init()
body = open(body_file).read()
run = score.run
for _ in range(min(n, 2000)):
    run(body)
times = []
for _ in range(n):
    t = time.perf_counter()
    run(body)
    times.append(time.perf_counter() - t)
times.sort()
print("%.3f %.3f" % (times[len(times) // 2] * 1e3, times[len(times) * 99 // 100] * 1e3))
