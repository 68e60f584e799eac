"""SHIP (EEBUS transport): certificates and SKIs, TLS contexts, the sans-IO connection state
machine, data messages, the node (server, dialer, admission) and the trust store. May import
ws and the ground floor only; imported by gateway."""
