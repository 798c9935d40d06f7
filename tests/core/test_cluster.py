"""Training on several machines (TF_CONFIG), the parts that need no second machine: the plain
message when another process of the cluster stops, and `--resume` refused under TF_CONFIG.
(Two real processes train together, and one is killed, in tests/e2e/test_multiworker.py.)"""

from __future__ import annotations

import json

import pytest

from finetune_gui.core.errors import SettingsError, UserError
from finetune_gui.core.training import cluster
from finetune_gui.core.training.devices import plan_devices

TWO_WORKERS = json.dumps({
    "cluster": {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]},
    "task": {"type": "worker", "index": 0},
})  # fmt: skip
# What TensorFlow 2.21 raises in the chief when a worker is killed mid-epoch.
PEER_GONE = (
    "{{function_node __inference_multi_step_on_iterator_5631}} Collective ops is aborted by: "
    "The following tasks are unhealthy (stopped responding):\n/job:worker/replica:0/task:1\n"
    "Additional GRPC error information from remote target /job:worker/replica:0/task:1"
)


@pytest.fixture
def strategies_made(monkeypatch) -> list[int]:
    """The real MultiWorkerMirroredStrategy starts a server and waits for its peers."""
    made: list[int] = []
    monkeypatch.setattr(cluster, "multiworker_strategy", lambda: made.append(1))
    return made


@pytest.mark.parametrize("error", ["UnavailableError", "AbortedError"])
def test_a_process_of_the_cluster_that_stops_is_a_plain_message(strategies_made, error):
    import tensorflow as tf

    plan = plan_devices([], tf_config=TWO_WORKERS)
    assert plan.strategy == "multiworker" and plan.is_chief

    def run_into(folder):
        raise getattr(tf.errors, error)(None, None, PEER_GONE)

    with pytest.raises(UserError) as caught:
        cluster.run_on_cluster(plan, run_into, resumed=False)
    message = str(caught.value)
    assert message == (
        "Another process of the cluster stopped, so this one stopped too (Collective ops is "
        "aborted by: The following tasks are unhealthy (stopped responding): "
        "/job:worker/replica:0/task:1). The chief's run folder keeps every finished epoch: start "
        "all processes again, or unset TF_CONFIG and continue on one machine with "
        "`finetune-gui train --resume RUN`."
    )
    assert strategies_made == [1]


def test_resume_is_refused_under_tf_config_before_anything_runs(strategies_made):
    ran = []
    plan = plan_devices([], tf_config=TWO_WORKERS)
    with pytest.raises(SettingsError, match=r"A run is resumed on one machine: unset TF_CONFIG "
                                            r"and run `finetune-gui train --resume RUN`"):
        cluster.run_on_cluster(plan, ran.append, resumed=True)
    assert ran == []
