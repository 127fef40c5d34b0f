"""The rlaif Kubernetes operator: typed API, pure builders and status, kopf handlers."""
