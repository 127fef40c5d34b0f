"""The ``rlaif`` CLI's cluster verbs: submit, status, logs, wait, working from a kubeconfig like kubectl.

- ``connect``: the API client and namespace from KUBECONFIG / ``--kubeconfig`` / ``--context`` / ``-n``;
- ``resources``: kind aliases and finding a resource by ``NAME`` or ``kind/NAME``;
- ``render``: pure functions from resource dicts to text (the status table and one resource's details);
- ``submit``, ``logs``, ``wait``: the verbs.

Light on purpose: the typed API, the builders' names and the operator's thin client (``kube.py``), never a
stage, torch or kopf.
"""

from rlaif_operator.clusterctl.resources import ClusterctlError

__all__ = ["ClusterctlError"]
