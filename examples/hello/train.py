"""A tiny training script: prints, writes outputs/ and posts a metric."""
import json
import os
import sys
import time
import urllib.error
import urllib.request

steps = int(os.environ.get("STEPS", "3"))
for i in range(steps):
    print(f"step {i}", flush=True)
    time.sleep(float(os.environ.get("STEP_SECONDS", "0.2")))

os.makedirs("outputs", exist_ok=True)
with open("outputs/result.txt", "w") as f:
    f.write(f"run {os.environ.get('HANGAR_RUN_ID')} attempt {os.environ.get('HANGAR_ATTEMPT')} args {sys.argv[1:]}\n")

url = f"{os.environ['HANGAR_URL']}/api/v1/workspaces/{os.environ['HANGAR_WORKSPACE']}/runs/{os.environ['HANGAR_RUN_ID']}/metrics"
req = urllib.request.Request(url, data=json.dumps({"name": "loss", "value": 0.25}).encode(),
                             headers={"Authorization": "Bearer " + os.environ["HANGAR_TOKEN"],
                                      "Content-Type": "application/json"}, method="POST")
for attempt in range(120):  # the server may be restarting: retry, the run goes on
    try:
        urllib.request.urlopen(req, timeout=30).read()
        break
    except urllib.error.HTTPError:
        raise
    except OSError:
        time.sleep(1)
print("done", flush=True)
