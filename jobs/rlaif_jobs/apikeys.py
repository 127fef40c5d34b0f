"""Which environment variable carries an endpoint's API key.

Each Secret key that an endpoint names (``endpoint.apiKeySecret``) gets its own variable, derived from
the Secret's name and key: the labeler, the d-RLAIF scorer and the judge of one pod each send their own
endpoint's key, never another endpoint's. The operator maps the Secret onto that variable
(``secretKeyRef``: the value never appears in a manifest); the engine reads it here.
"""

from __future__ import annotations

import hashlib
import os

from rlaif_jobs.config.common import SecretKeyRef

FALLBACK_ENV = "RLAIF_LABELER_API_KEY"  # local runs and endpoints without apiKeySecret


def api_key_env(ref: SecretKeyRef) -> str:
    """``RLAIF_API_KEY_<12 hex digits of sha256(name/key)>``: distinct Secrets never share a variable."""
    return "RLAIF_API_KEY_" + hashlib.sha256(f"{ref.name}/{ref.key}".encode()).hexdigest()[:12].upper()


def read_api_key(ref: SecretKeyRef | None) -> str | None:
    """The key for an endpoint whose Secret is ``ref`` (None: no Secret named); falls back to
    ``RLAIF_LABELER_API_KEY``, which the operator never sets, for runs outside a cluster."""
    return (os.environ.get(api_key_env(ref)) if ref is not None else None) or os.environ.get(FALLBACK_ENV)
