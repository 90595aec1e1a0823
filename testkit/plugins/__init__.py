"""pytest plugins, loaded from the root conftest.py through `pytest_plugins`."""
