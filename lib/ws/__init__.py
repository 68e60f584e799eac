"""WebSocket (RFC 6455): the fixed-buffer frame codec, the HTTP upgrade and the asyncio stream
adapter. May import the ground floor only; imported by ship (and gateway)."""
