"""The same entry script behind Flask, for run.sh's comparison.

gunicorn -w 2 flask_app:app with SCORE_DIR (and SCORE_ENTRY, default
score.py) in the environment: each gunicorn worker imports the script and
calls init() once, and POST /score answers json.dumps(run(body)).
"""
import importlib.util
import json
import os
import sys

from flask import Flask, Response, request

_src = os.environ["SCORE_DIR"]
_entry = os.environ.get("SCORE_ENTRY", "score.py")
sys.path.insert(0, _src)
_spec = importlib.util.spec_from_file_location("score", os.path.join(_src, _entry))
score = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(score)
if hasattr(score, "init"):
    score.init()

app = Flask(__name__)


@app.route("/score", methods=["POST"])
def score_route():
    try:
        result = score.run(request.get_data(as_text=True))
    except Exception as exc:  # noqa: BLE001 - the benchmark only needs a 500
        return Response(json.dumps({"error": str(exc)}), status=500, mimetype="application/json")
    return Response(json.dumps(result), mimetype="application/json")
