"""Elastic scaling: a pure policy, the controller that applies it, and a simulator to compare."""
