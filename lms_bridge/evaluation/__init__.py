"""Monitoring and evaluation: learning gain from the pre/post tests, and tracer studies of alumni."""
