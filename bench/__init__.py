"""Benchmarks (not tests): `make bench` runs them against PostgreSQL and Redis and prints a table."""
