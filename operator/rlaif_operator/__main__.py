"""``python -m rlaif_operator``: runs the operator with settings from the environment (``RLAIF_*``)."""

from __future__ import annotations

import logging

import kopf

from rlaif_operator.settings import load_settings


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kopf.configure(verbose=settings.log_level == "DEBUG")
    import rlaif_operator.handlers  # noqa: F401 - registers the handlers

    kopf.run(
        standalone=settings.standalone,
        peering_name=settings.peering_name,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=settings.liveness_endpoint or None,
    )


if __name__ == "__main__":
    main()
