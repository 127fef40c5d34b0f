"""The project's test API server: kmock plus what a real API server does for the operator.

Import with ``tests/`` on ``sys.path`` (the integration conftest and the benchmark arrange it).
"""

from testapi.runner import TestApiServer, kubeconfig_text
from testapi.server import ApiServer
from testapi.store import ApiError, Store

__all__ = ["ApiError", "ApiServer", "Store", "TestApiServer", "kubeconfig_text"]
