"""``python -m rlaif_operator``: runs the operator with settings from the environment (``RLAIF_*``)."""

from __future__ import annotations

import logging

import kopf

from rlaif_operator.settings import load_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main() -> None:
    settings = load_settings()
    # kopf.configure installs the one root handler (its own, which kopf run also uses): a basicConfig
    # handler next to it printed every line twice.
    kopf.configure(verbose=settings.log_level == "DEBUG",
                   log_format=LOG_FORMAT)  # type: ignore[arg-type]  # any logging format works; kopf types its enum
    logging.getLogger().setLevel(settings.log_level)
    import rlaif_operator.handlers  # noqa: F401 - registers the handlers

    kopf.run(
        standalone=True,  # no kopf peering: replicas elect a leader on a Lease (settings.leader_election)
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=settings.liveness_endpoint or None,
    )


if __name__ == "__main__":
    main()
