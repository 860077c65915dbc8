# Collect scenarios/**/*.yaml as tests (see engine/pytest_plugin.py).
pytest_plugins = ["engine.pytest_plugin"]
