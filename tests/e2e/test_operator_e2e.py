"""End to end on a real cluster (skipped unless KUBECONFIG names one): the CRDs, the real operator
process, real images, real GPUs or CPUs.

    KUBECONFIG=~/.kube/config pytest tests/e2e -m e2e

Environment: RLAIF_E2E_OPERATOR=deployed uses an operator installed with the chart instead of starting
one here; RLAIF_E2E_PVC names the claim each test namespace gets for the stages' outputs
(default rlaif-data; RLAIF_E2E_ACCESS_MODE, default ReadWriteOnce: the operator refuses outputs on a
pod's own disk);
RLAIF_E2E_TIMEOUT (seconds, default 7200) bounds the full pipeline; the operator's own
settings (RLAIF_LABELER_IMAGE, ...) apply to the one started here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from clusterkit import REPO, Cluster, Operator, eventually  # noqa: E402

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs a real cluster in KUBECONFIG")]


def on_claim(spec: dict, stage: str) -> None:
    """Moves a stage spec's output onto the claim RLAIF_E2E_PVC mounted at /data (relative paths in the
    local-mode examples would live on the pod's own disk, which the operator refuses on a cluster)."""
    spec.setdefault("runtime", {})["storage"] = {"pvcName": os.environ.get("RLAIF_E2E_PVC", "rlaif-data"),
                                                 "mountPath": "/data"}
    spec["output"] = {**spec.get("output", {}), "uri": f"/data/e2e/{stage}"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    c = Cluster(os.environ["KUBECONFIG"], str(tmp_path_factory.mktemp("kubectl-cache")))
    c.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    for crd in ("rlaifpipelines", "preferencelabeljobs", "rewardmodelruns", "policyrlruns"):
        c.kubectl("wait", "--for=condition=Established", f"crd/{crd}.rlaif.dev", "--timeout=60s")
    return c


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator | None]:
    if os.environ.get("RLAIF_E2E_OPERATOR") == "deployed":
        yield None
        return
    op = Operator(cluster, tmp_path_factory.mktemp("operator") / "operator.log")
    op.start()
    yield op
    op.stop()


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    name = cluster.new_namespace("rlaif-e2e")
    # The stages' outputs outlive their pods on this claim (the cluster's default storage class).
    cluster.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": os.environ.get("RLAIF_E2E_PVC", "rlaif-data")},
                   "spec": {"accessModes": [os.environ.get("RLAIF_E2E_ACCESS_MODE", "ReadWriteOnce")],
                            "resources": {"requests": {"storage": "20Gi"}}}}, name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_bad_input_is_rejected_or_reported(cluster: Cluster, operator: Operator | None, ns: str) -> None:
    bad = yaml.safe_load((REPO / "tests" / "data" / "invalid" / "zero-shards.yaml").read_text())
    result = cluster.apply(bad, ns, check=False)
    assert result.returncode != 0 and "numShards" in result.stderr
    doc = yaml.safe_load((REPO / "examples" / "preference-label-job.yaml").read_text())
    on_claim(doc["spec"], "label")
    doc["spec"]["runtime"]["hubTokenSecret"] = {"name": "absent", "key": "token"}
    cluster.apply(doc, ns)
    name = doc["metadata"]["name"]
    eventually(lambda: (c := cluster.condition("plj", name, ns, "InputsReady")) and c["reason"] == "SecretNotFound",
               timeout=60, what="SecretNotFound")


def test_quickstart_pipeline_succeeds(cluster: Cluster, operator: Operator | None, ns: str) -> None:
    docs = [d for d in yaml.safe_load_all((REPO / "examples" / "quickstart-pipeline.yaml").read_text()) if d]
    for stage in ("labeling", "rewardModel", "policy"):
        on_claim(docs[0]["spec"][stage], stage)
    cluster.apply(docs, ns)
    name = docs[0]["metadata"]["name"]
    timeout = float(os.environ.get("RLAIF_E2E_TIMEOUT", "7200"))
    cluster.wait(f"rlaifpipeline/{name}", ns, "condition=Succeeded", timeout=timeout)
    status = cluster.get("rlp", name, ns)["status"]
    assert {"alignment", "evalAccuracy", "winRate"} <= set(status["metrics"])
    assert [s["phase"] for s in status["stages"]] == ["Succeeded"] * 3
