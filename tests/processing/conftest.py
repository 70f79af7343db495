"""Fixtures of the Processing tests (the shared ``alg_ready`` lives in tests/conftest.py)."""
