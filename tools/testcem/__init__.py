"""Test CEM: independent SHIP peer (TLS + WebSocket + SHIP handshake) for testing the gateway.

Modules: dialect (plain <-> EEBUS JSON), identity (certificates, SKI), tls (contexts), ship (ShipPeer,
ShipServer, ShipError, message builders), spine (SpineCem: SPINE datagrams, our CEM device, discovery,
subscriptions, bindings, reads/writes, notifies), usecases + ucdata + ucrun (the CEM side of EVSECC, EVCC,
EVCEM, OPEV, OSCEV, EVSOC, CEVC, LPC, MPC, EVCS as eebus-go implements it), cli (gw cem). Nothing from the
firmware lib/ is imported.
"""
