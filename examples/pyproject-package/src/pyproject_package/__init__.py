"""Fetch posts from a JSON API, clean them and report statistics."""

__version__ = "0.1.0"
