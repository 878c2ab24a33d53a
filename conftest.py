"""Root conftest: registers the fixture modules of the test peers."""

import os

pytest_plugins = ["tests.peers.fixtures"]
if os.path.exists(os.path.join(os.path.dirname(__file__), "tests", "servers", "proxy_fixtures.py")):
    pytest_plugins.append("tests.servers.proxy_fixtures")
