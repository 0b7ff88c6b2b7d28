"""The main job through the Python SDK only, written as an Azure ML v1 script.

Creates (or reuses) the cluster cpu-cluster, trains train.py on it in the
sklearn environment, reads the run's metrics, registers the model, deploys it
as a local web service with key auth, scores the held-out digits over HTTP,
and deletes the service and the cluster. Only the imports and the workspace
line differ from azureml-core:

    from azureml.core import ...            ->  from hangar.core import ...
    ws = Workspace.from_config()            (the same: ./.hangar/config.json,
                                             ~/.hangar/config.json or HANGAR_URL/HANGAR_TOKEN)

Run:  PYTHONPATH=sdk/python python3 examples/digits/main_job.py [--keep]
The last line is the service's held-out accuracy, e.g. "accuracy: 0.962".
"""
import json
import os
import sys
import tempfile

from hangar.core import Environment, Experiment, Model, ScriptRunConfig, Workspace
from hangar.core.compute import AmlCompute, ComputeTarget
from hangar.core.compute_target import ComputeTargetException
from hangar.core.conda_dependencies import CondaDependencies
from hangar.core.model import InferenceConfig
from hangar.core.webservice import LocalWebservice

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keep = "--keep" in sys.argv
    ws = Workspace.from_config()

    # The cluster: reuse it if it exists (the article's pattern).
    cluster_name = "cpu-cluster"
    try:
        cluster = ComputeTarget(workspace=ws, name=cluster_name)
        print("Found existing cluster, use it.")
    except ComputeTargetException:
        config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=2,
                                                       idle_seconds_before_scaledown=60)
        cluster = ComputeTarget.create(ws, cluster_name, config)
    cluster.wait_for_completion(show_output=True)

    # The environment: Debian's python3 with scikit-learn.
    env = Environment("sklearn")
    env.python.interpreter_path = "/usr/bin/python3"
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["scikit-learn"])
    env.environment_variables = {"OMP_NUM_THREADS": "1"}
    env = env.register(ws)

    # Train.
    src = ScriptRunConfig(source_directory=HERE, script="train.py", arguments=["--C", 0.5],
                          compute_target=cluster, environment=env)
    run = Experiment(workspace=ws, name="digits").submit(src)
    run.wait_for_completion(show_output=True)
    metrics = run.get_metrics()
    print("metrics:", metrics)

    # Register and deploy.
    model = run.register_model(model_name="digits", model_path="outputs/model.pkl",
                               tags={"accuracy": round(metrics["accuracy"], 4)})
    print("registered model {} version {}".format(model.name, model.version))
    inference_config = InferenceConfig(entry_script="score.py", source_directory=HERE, environment=env)
    deployment_config = LocalWebservice.deploy_configuration(auth_enabled=True)
    service = Model.deploy(ws, "digits-svc", [model], inference_config, deployment_config, overwrite=True)
    service.wait_for_deployment(show_output=True)
    print("scoring_uri:", service.scoring_uri)

    # Score the held-out digits the model never saw.
    with tempfile.TemporaryDirectory() as d:
        path = run.download_file("outputs/heldout.json", d)
        with open(path) as f:
            held = json.load(f)
    correct = 0
    for i in range(0, len(held["data"]), 100):
        preds = service.run(json.dumps({"data": held["data"][i:i + 100]}))
        correct += sum(int(p == y) for p, y in zip(preds, held["labels"][i:i + 100]))
    print("{} held-out digits scored, {} correct".format(len(held["labels"]), correct))

    if not keep:
        service.delete()
        cluster.delete()
        print("deleted the service and the cluster")
    print("accuracy: {:.3f}".format(correct / len(held["labels"])))


if __name__ == "__main__":
    main()
