"""Test CEM: independent SHIP peer (TLS + WebSocket + SHIP handshake) for testing the gateway.

Modules, by concern:
  transport   tls (contexts), ws (WsPeer: TLS connect, WebSocket upgrade, frames, pings, close)
  SHIP        shipmsg (constants, ShipError, message builders, ShipMessage), ship (ShipPeer: the SHIP
              state machine), shipserver (ShipServer), identity (certificates via tools/certs.py, SKI),
              dialect (plain <-> EEBUS JSON)
  SPINE       spinemsg (datagrams: build, parse, addresses, results), spinemodel (remote device, local
              features), spine (SpineCem: our CEM device, discovery, subscriptions, bindings, reads/writes,
              notifies, answers)
  use cases   ucdata (remote data, values), ucbase (UseCaseBase), ucevmon (EVSECC, EVCC, EVCEM, EVSOC),
              ucevctl (OPEV, OSCEV, CEVC), ucgrid (LPC, MPC, EVCS), usecases (registry), ucrun (the runner)
  CLI         cli (gw cem)
Nothing from the firmware lib/ is imported (tools/certs.py is shared with gw certs).
"""
