"""The gateway: the app's orchestration (asyncio tasks under the supervisor), the board and
device configs, network bring-up, time, memory housekeeping, the service start-up of mDNS and
ECHONET (mdns_service, echonet_service), the console and diag. The top floor: may import every
other room (usecases, spine, eejson, ship, ws, controller, modbus, echonet, mdns, the charger
model, the ground floor); nothing imports it."""
