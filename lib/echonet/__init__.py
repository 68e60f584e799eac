"""ECHONET Lite device engine: the charging station as an EV charger object on UDP 3610.
frame (format-1 codec), props (property encoders), objects (class tables), engine (sans-IO
service rules), udp (asyncio socket adapter). May import the charger model and the ground floor
(compat, log, jsonfile, check); the gateway builds and starts it (gateway/echonet_service.py)."""
