"""Pure builders: typed resources in, plain dicts or models out. No I/O, no kopf, no kubernetes client."""
