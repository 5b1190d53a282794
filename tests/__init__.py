"""The test suite; fixtures start real servers (see conftest.py)."""
