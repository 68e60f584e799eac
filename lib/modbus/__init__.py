"""Pure Modbus: PDU codec, RTU and TCP framing, the master's stepper and the transports (UART
with RS-485 direction, serial, TCP, RTU over TCP). Knows nothing of chargers: may import the
ground floor (compat, log) only; imported by controller (and the gateway, which opens the
transport)."""
