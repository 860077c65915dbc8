"""Spark tests (real Spark, local mode); a package so that its conftest does not shadow tests/conftest.py."""
