"""The installed rlaif version (images' default tags, the API client's user agent)."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("rlaif")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.1.0"
