"""The device's side of an RTU line (lib/modbus/rtu.py has the master's): how long a request
frame is and the inter-character timeout, for tests and host tools; the gateway, a master,
needs neither. Plain MicroPython: the shared case files use it under the unix port."""

from modbus.pdu import FC_READ_COILS, FC_WRITE_COILS, FC_WRITE_MULTIPLE, FC_WRITE_SINGLE, ModbusError


def request_length(buf, n):
    # The length of an RTU request frame from its first n bytes, 0 while unknown (what a
    # device or a line monitor reads; rtu.frame_length is the master's, for replies).
    if n < 2:
        return 0
    fc = buf[1]
    if FC_READ_COILS <= fc <= FC_WRITE_SINGLE:
        return 8
    if fc == FC_WRITE_COILS or fc == FC_WRITE_MULTIPLE:
        if n < 7:
            return 0
        return 9 + buf[6]
    raise ModbusError("function code")


def t15_us(baud):
    # RTU inter-character timeout (1.5 characters; fixed above 19200 baud)
    return 750 if baud > 19200 else (16500000 + baud - 1) // baud
