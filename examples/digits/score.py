"""Entry script of the digits web service (Azure ML scoring-script contract).

init() runs once per worker and loads the model; run(raw_data) gets the
request body as a string: {"data": [[64 pixel values 0..16], ...]} and
returns the predicted digits.
"""
import json
import os
import pickle

model = None


def init():
    global model
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl")
    with open(path, "rb") as f:
        model = pickle.load(f)


def run(raw_data):
    import numpy as np
    data = np.asarray(json.loads(raw_data)["data"], dtype=float)
    if data.ndim == 1:
        data = data.reshape(1, -1)
    return model.predict(data / 16.0).tolist()
