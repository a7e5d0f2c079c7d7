"""pocketca: a small certificate authority as a REST service."""

__version__ = "0.1.0"
