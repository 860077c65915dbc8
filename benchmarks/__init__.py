"""leadops benchmarks (not part of the test suite's pass/fail). Run: .venv/bin/python -m benchmarks.run"""
