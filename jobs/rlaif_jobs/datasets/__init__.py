"""Datasets the project ships (see generate.py) and their generator."""
