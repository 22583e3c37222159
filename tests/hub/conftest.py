"""Fixtures of the hub tests: the Hub stand-in server on 127.0.0.1."""

import pytest
from hub_fixtures import TOKEN, HubState, serve_in_thread


@pytest.fixture
def hub_server():
    """``(state, endpoint)`` of a fresh stand-in Hub that needs ``TOKEN`` for writes."""
    state = HubState(token=TOKEN)
    srv, url = serve_in_thread(state)
    yield state, url
    srv.shutdown()
    srv.server_close()
