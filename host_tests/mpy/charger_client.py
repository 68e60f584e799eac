# Gateway-side client for test_sim.py, under the MicroPython unix port: a register map
# (lib/controller/regmap) driving the Modbus master (lib/modbus/master) into a charger model
# (lib/charger), one command per stdin line, one answer line per command:
#   charger_client.py <map.json> <tcp|rtutcp> <host> <port>
#   poll                 read every block, decode -> "FIELDS {json of the model's fields}"
#   limit <amps>         encode_limit and write it (and the enable) -> "OK <value> <enable>"
#   init                 the map's init writes -> "OK <n>"
#   write <fc> <addr> <value>, read <fc> <addr> <count>, retries <n>, quit
#   wlimit <W> <ms> <write interval ms>  a W obligation in a fresh model, polled every 100 ms
#                        for ms, each pending write written -> "OK <writes> <worst>", worst
#                        the highest setpoint * sum(U) / W seen (1 = at the limit)
# Failures answer "ERR <exception class> <detail>". The master is driven through its stepper
# with time.sleep_ms, as the poller will (minus asyncio).
import json
import sys
import time

from charger import FIELD_NAMES, Charger
from controller import mapload, regmap
from modbus.master import Master
from modbus.pdu import ModbusException
from modbus.net import RtuOverTcp, Tcp


def run(m, unit, fc, addr, count=1, data=None, out=None):
    m.start(unit, fc, addr, count, data, out)
    while not m.poll():
        time.sleep_ms(1)


def fields(model):
    return json.dumps(dict((FIELD_NAMES[i], model.get(i)) for i in range(len(FIELD_NAMES))))


def write(m, unit, w, value):
    if w.fc == 16:
        run(m, unit, 16, w.address, 1, [value])
    else:
        run(m, unit, w.fc, w.address, 1, value)


def wlimit(m, unit, rm, watts, ms, interval):
    from charger import F_U1, OBLIGATION, SRC_LPC, UNIT_W

    model = Charger(write_interval_ms=interval)
    model.link(True)
    t0 = time.ticks_ms()
    model.request(SRC_LPC, OBLIGATION, watts, UNIT_W, t0)
    writes = 0
    worst = 0
    while True:
        now = time.ticks_ms()
        if time.ticks_diff(now, t0) >= ms:
            break
        for b in rm.blocks:
            run(m, unit, b.fc, b.address, b.count, None, b.regs)
            rm.decode(b, b.regs, model)
        model.flush()
        a = model.pending_write(now)
        if a is not None:
            value, enable = rm.encode_limit(a)
            if value is not None:
                write(m, unit, rm.limit, value)
            if enable is not None:
                write(m, unit, rm.enable, enable)
            model.written(a, now)
            writes += 1
        u = sum(model.get(F_U1 + p) or 0 for p in range(3))
        for x in (model.setpoint(), model.applied() if writes > 1 else 0):
            if x * u / watts > worst:
                worst = x * u / watts
        time.sleep_ms(100)
    return writes, worst


def main():
    path, kind, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    rm = mapload.load_file(path)
    link = Tcp(host, port) if kind == "tcp" else RtuOverTcp(host, port)
    m = Master(link, timeout_ms=300, retries=2)
    model = Charger()
    unit = rm.unit
    print("READY", rm.name, len(rm.blocks))
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        words = line.split()
        if not words:
            continue
        cmd = words[0]
        try:
            if cmd == "quit":
                break
            if cmd == "poll":
                for b in rm.blocks:
                    run(m, unit, b.fc, b.address, b.count, None, b.regs)
                    rm.decode(b, b.regs, model)
                model.flush()
                print("FIELDS", fields(model))
            elif cmd == "limit":
                a = float(words[1]) if "." in words[1] else int(words[1])
                value, enable = rm.encode_limit(a)
                if value is not None:
                    write(m, unit, rm.limit, value)
                if enable is not None:
                    write(m, unit, rm.enable, enable)
                print("OK", value, enable)
            elif cmd == "wlimit":
                print("OK %d %.4f" % wlimit(m, unit, rm, int(words[1]), int(words[2]), int(words[3])))
            elif cmd == "init":
                ws = rm.init_writes()
                for w in ws:
                    write(m, unit, w, w.value)
                print("OK", len(ws))
            elif cmd == "write":
                fc, addr, value = int(words[1]), int(words[2]), int(words[3])
                write(m, unit, regmap.Write(0, addr, fc, 0), value)
                print("OK")
            elif cmd == "read":
                fc, addr, n = int(words[1]), int(words[2]), int(words[3])
                out = [0] * n
                run(m, unit, fc, addr, n, None, out)
                print("VALUES", ",".join(str(v) for v in out))
            elif cmd == "retries":
                m.retries = int(words[1])
                print("OK")
            else:
                print("ERR ValueError unknown command")
        except ModbusException as e:
            print("ERR ModbusException", e.code)
        except Exception as e:  # the test reads the class; the client keeps serving
            print("ERR", type(e).__name__, e)
    m.close()
    print("DONE")


main()
