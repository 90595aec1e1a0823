"""Test tooling for the provisioning app: doubles for the systems it drives."""
