"""requests_ws: a synchronous WebSocket client that works wherever requests works."""
