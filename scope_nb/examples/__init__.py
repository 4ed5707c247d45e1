"""Buggy concurrent programs shipped for the demo and the notebooks. The recorder
treats this folder as user code, not as part of itself."""
