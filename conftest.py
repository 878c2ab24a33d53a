"""Root conftest: registers the test-server fixture modules under tests/servers."""

pytest_plugins = ["tests.servers.fixtures", "tests.servers.proxy_fixtures"]
