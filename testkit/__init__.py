"""Test tooling shared by the suites: pytest plugins and acceptance clients. Never in the image."""
