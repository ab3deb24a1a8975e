"""Errors a person can fix: their messages are safe to show them as they are."""

from __future__ import annotations


class InputError(ValueError):
    """Input a person can fix; the message is safe to show them."""
