"""Several machines, played by two worker processes on this one: TF_CONFIG, MultiWorkerMirroredStrategy.

Each worker is the real command line, started the way docs/distributed.md tells users to start
one per machine; only the addresses are 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from finetune_gui.demo import make_shapes_dataset

pytestmark = pytest.mark.slow

# The run takes about 70 s of CPU time for both workers together (200 s of wall time measured on
# two cores shared with other jobs); the limit leaves room for that, and a worker that waits
# forever for a peer that died is killed rather than waited on.
WORKER_TIMEOUT_S = 420


def free_local_ports(count: int) -> list[int]:
    """Ports the system just handed out on 127.0.0.1; all sockets stay open until all are
    chosen, so the ports differ."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_workers(commands: list[list[str]], envs: list[dict], cwd: Path, logs: list[Path]):
    """Start every worker, wait for all until the deadline, kill the rest; return exit codes."""
    processes = []
    for command, env, log in zip(commands, envs, logs, strict=True):
        with open(log, "wb") as out:
            processes.append(
                subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
            )
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    try:
        for process in processes:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return [process.returncode for process in processes]


def test_two_workers_on_localhost_train_one_model_that_only_the_chief_keeps(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", per_class=12, size=32)
    ports = free_local_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    commands, envs, logs = [], [], []
    for index in range(2):
        # Each worker's temporary folder, to check that the scratch run folder is gone at the end.
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir()
        envs.append({
            **os.environ,
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            "TMPDIR": str(scratch),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        })  # fmt: skip
        commands.append([
            sys.executable, "-m", "finetune_gui", "train", str(data), "--out", f"RUN_{index}",
            "--weights", "none", "--backbone", "mobilenetv3small", "--image-size", "32",
            "--epochs-head", "2", "--epochs-finetune", "0", "--batch-size", "8",
        ])  # fmt: skip
        logs.append(tmp_path / f"worker{index}.log")

    started = time.monotonic()
    codes = run_workers(commands, envs, tmp_path, logs)
    elapsed = time.monotonic() - started
    outputs = [log.read_text(errors="replace") for log in logs]
    assert codes == [0, 0], f"exit codes {codes} after {elapsed:.0f} s:\n" + "\n----\n".join(
        out[-3000:] for out in outputs
    )
    chief_out, worker_out = outputs
    assert "Training together with 2 processes" in chief_out and "worker 0" in chief_out
    assert "Run folder: RUN_0" in chief_out
    assert "This was worker 1" in worker_out and "nothing was kept here" in worker_out

    # The chief's run folder is complete; the other worker left nothing, not even its scratch.
    run = tmp_path / "RUN_0"
    for name in ("model.keras", "metrics.json", "labels.txt", "history.csv", "split.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert len((run / "history.csv").read_text().strip().splitlines()) == 1 + 2  # header, 2 epochs
    assert not (tmp_path / "RUN_1").exists()
    assert not any((tmp_path / "tmp1").iterdir())

    # The model on disk is the one that was evaluated together: its probabilities for each test
    # image, computed here in one process, match those the two workers gathered into metrics.json.
    import keras

    from finetune_gui.core.data.images import load_rgb

    metrics = json.loads((run / "metrics.json").read_text())
    model = keras.models.load_model(run / "model.keras")
    predictions = metrics["predictions"]
    assert len(predictions) == metrics["count"] > 0
    pixels = np.stack([load_rgb(tmp_path / p["path"], 32) for p in predictions])
    here = model.predict(pixels, verbose=0)
    gathered = np.array([p["probabilities"] for p in predictions])
    np.testing.assert_allclose(here, gathered, atol=1e-4)


def test_a_worker_that_dies_stops_the_chief_with_a_plain_message(tmp_path):
    """docs/distributed.md: when one process stops, the others stop too and say what to do;
    the chief's run folder keeps every finished epoch, to resume on one machine."""
    data = make_shapes_dataset(tmp_path / "data", per_class=12, size=32)
    ports = free_local_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes, logs = [], []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [
            sys.executable, "-m", "finetune_gui", "train", str(data), "--out", f"RUN_{index}",
            "--weights", "none", "--backbone", "mobilenetv3small", "--image-size", "32",
            "--epochs-head", "200", "--epochs-finetune", "0", "--batch-size", "8",
            "--patience", "0",
        ]  # fmt: skip
        logs.append(tmp_path / f"worker{index}.log")
        with open(logs[-1], "wb") as out:
            processes.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out,
                                              stderr=subprocess.STDOUT))
    chief, worker = processes
    history = tmp_path / "RUN_0" / "history.csv"
    try:
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while time.monotonic() < deadline and chief.poll() is None and (
            not history.exists() or len(history.read_text().strip().splitlines()) < 2
        ):
            time.sleep(0.2)
        assert chief.poll() is None, logs[0].read_text(errors="replace")[-3000:]
        worker.kill()
        worker.wait()
        chief.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    out = logs[0].read_text(errors="replace")
    assert chief.returncode == 2, out[-3000:]
    assert "Another process of the cluster stopped, so this one stopped too" in out
    assert "finetune-gui train --resume RUN" in out and "{{function_node" not in out
    assert len(history.read_text().strip().splitlines()) >= 2  # finished epochs are kept
