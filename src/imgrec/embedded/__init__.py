"""Embedded adapters: everything on one machine, no cloud account."""
