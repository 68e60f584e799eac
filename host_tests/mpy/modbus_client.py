# End-to-end Modbus client for test_modbus_e2e.py, under the MicroPython unix port:
#   modbus_client.py <tcp|rtutcp|serial> <host|tty> <port|baud> <fault-control-port> <faults> [<closed-port>]
# Reads and writes a pymodbus device through lib/modbus over one link, asks the fault proxy in
# front of the device for one fault at a time (a line "name count" on its control port), and
# prints one line per step for the test to check against the device's datastore.
import asyncio
import socket
import sys
from array import array

from mbclient import Client as Master  # tools/, on MICROPYPATH from the test
from modbus.pdu import ModbusError, ModbusException
from modbus.net import RtuOverTcp, Tcp
from modbus.tty import Serial

UNIT = 1
COUNTERS = ("timeouts", "retried", "crc_errors", "bad_frames", "discarded", "link_errors", "exceptions", "errors")


def link(kind, a, b):
    if kind == "tcp":
        return Tcp(a, int(b))
    if kind == "rtutcp":
        return RtuOverTcp(a, int(b))
    return Serial(a, int(b))


def fault(port, name, count):
    s = socket.socket()
    s.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    s.write(("%s %d\n" % (name, count)).encode())
    assert s.readline() == b"ok\n"
    s.close()


def csv(values):
    return ",".join(str(v) for v in values)


def counters(m):
    return [getattr(m, k) for k in COUNTERS]


def delta(m, before):
    now = counters(m)
    return " ".join("%s=%d" % (k, now[i] - before[i]) for i, k in enumerate(COUNTERS) if now[i] != before[i])


async def main():
    kind, a, b, ctl, faults = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    m = Master(link(kind, a, b), timeout_ms=300, retries=2)
    regs = array("H", bytes(40))

    await m.read_holding(UNIT, 0, 10, regs)
    print("READ hr 0 10", csv(regs[:10]))
    print("READ ir 0 5", csv(await m.read_input(UNIT, 0, 5)))
    print("READ co 0 8", csv(await m.read_coils(UNIT, 0, 8)))
    print("READ di 0 8", csv(await m.read_discrete(UNIT, 0, 8)))
    await m.write_single(UNIT, 2, 4242)
    await m.write_multiple(UNIT, 10, array("H", (1, 2, 3)))
    await m.write_coil(UNIT, 5, True)
    await m.write_coils(UNIT, 8, (1, 0, 1))
    print("READ hr 0 14", csv(await m.read_holding(UNIT, 0, 14)))
    print("READ co 0 12", csv(await m.read_coils(UNIT, 0, 12)))

    try:
        await m.read_holding(UNIT, 98, 5)
        print("EXC none")
    except ModbusException as e:
        print("EXC", e.code, e.name)
    await m.read_holding(UNIT, 0, 3, regs)
    print("RECOVER", csv(regs[:3]))

    # steady-state polls through the stepper, the path the poller uses
    for i in range(20):
        m.start(UNIT, 3, 0, 10, None, regs)
        while not m.poll():
            await asyncio.sleep_ms(m.poll_ms)
    print("POLLS 20", csv(regs[:10]))

    for spec in faults.split(","):
        if not spec:
            continue
        name, _, n = spec.partition("*")
        n = int(n or 1)
        before = counters(m)
        fault(ctl, name, n)
        try:
            await m.read_holding(UNIT, 0, 4, regs)
            result = "OK " + csv(regs[:4])
        except ModbusException as e:
            result = "EXC %d" % e.code
        except ModbusError as e:
            result = type(e).__name__
        d = delta(m, before)
        await m.read_holding(UNIT, 0, 4, regs)  # recovered (and drains what the fault left)
        print("FAULT", spec, result, "|", d, "| after", csv(regs[:4]), "|", delta(m, before))

    if len(sys.argv) > 6:
        # nothing listens there: refused at once on every attempt
        d = Master(Tcp("127.0.0.1", int(sys.argv[6])), timeout_ms=300, retries=2)
        try:
            await d.read_holding(UNIT, 0, 1)
            print("DOWN answered")
        except ModbusError as e:
            print("DOWN", type(e).__name__, e.args[0], "link_errors=%d" % d.link_errors)
        d.close()

    print("STATS", " ".join("%s=%d" % (k, getattr(m, k)) for k in ("requests",) + COUNTERS))
    m.close()
    print("DONE")


asyncio.run(main())
