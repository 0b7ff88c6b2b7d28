"""Train a classifier on scikit-learn's bundled digits data set.

Runs anywhere Hangar sends it: reads nothing from the network, writes the
model to outputs/model.pkl (uploaded with the run) and logs its accuracy as a
run metric through Hangar's REST API, using only the standard library.
"""
import argparse
import json
import os
import pickle
import time
import urllib.error
import urllib.request

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split


def log_metric(name, value):
    """Post one metric to the run this script runs as (no-op outside Hangar).

    Retries for up to two minutes while the server is unreachable (say, being
    restarted): the run itself goes on without it.
    """
    url, run_id = os.environ.get("HANGAR_URL"), os.environ.get("HANGAR_RUN_ID")
    if not url or not run_id:
        return
    ws = os.environ.get("HANGAR_WORKSPACE", "default")
    req = urllib.request.Request(
        f"{url}/api/v1/workspaces/{ws}/runs/{run_id}/metrics",
        data=json.dumps({"name": name, "value": value}).encode(),
        headers={"Authorization": "Bearer " + os.environ["HANGAR_TOKEN"],
                 "Content-Type": "application/json"},
        method="POST")
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(req, timeout=30).read()
            return
        except urllib.error.HTTPError:
            raise  # the server answered: a real error
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--max-iter", type=int, default=2000)
    args = parser.parse_args()

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.25, random_state=0)
    print(f"training on {len(x_train)} images, testing on {len(x_test)}", flush=True)
    model = LogisticRegression(C=args.C, max_iter=args.max_iter)
    model.fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    print(f"accuracy: {accuracy:.4f}", flush=True)
    log_metric("accuracy", accuracy)
    log_metric("C", args.C)

    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.pkl", "wb") as f:
        pickle.dump(model, f)
    # The held-out images (raw pixel values 0..16) and labels, so the deployed
    # service can be scored on data the model never saw.
    with open("outputs/heldout.json", "w") as f:
        json.dump({"data": (x_test * 16.0).round().astype(int).tolist(),
                   "labels": y_test.tolist()}, f)
    print("saved outputs/model.pkl and outputs/heldout.json", flush=True)


if __name__ == "__main__":
    main()
