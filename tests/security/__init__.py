"""Security suites for issue 7: sandbox advisories, property-based tests, hostile inputs, host leaks."""
