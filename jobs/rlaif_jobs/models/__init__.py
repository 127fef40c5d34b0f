"""Model locations: builtin test models, hub ids, object stores, local folders."""
