"""Local mode: run the same manifests on this machine, through the same workload entrypoints."""
