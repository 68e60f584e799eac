"""Release R property tables read from host_tests/vectors/echonet-release-r.md (transcribed from the
ECHONET Consortium's Appendix Release R, MRA v1.3.1), and an EDT checker built from them. Independent of
lib/: the tests use it to check every property the gateway encodes."""

import re

from support.paths import ECHONET_TABLES as PATH

SECTIONS = {"0x0EF0": "node", "0x0000": "super", "0x02A1": "evc", "0x027E": "evcd"}


def load(path=PATH):
    """{"node"|"super"|"evc"|"evcd": {epc: row}}; row: name, get, set, anno, data, max."""
    out = {}
    cur = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^## (0x[0-9A-F]{4}) ", line)
            if m:
                cur = SECTIONS.get(m.group(1))
                if cur:
                    out[cur] = {}
                continue
            if cur and line.startswith("| 0x"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                epc = int(cells[0], 16)
                out[cur][epc] = {"name": cells[1], "get": cells[3], "set": cells[4], "anno": cells[5],
                                 "data": cells[6], "max": cells[7]}
    return out


def mandatory(tables, section, column):
    return {e for e, r in tables[section].items() if r[column] == "M"}


def _states(data):
    # state(1 B) {0x30=true,...} -> set of codes (ranges a...b expanded)
    m = re.search(r"state\((\d) B\) \{([^}]*)\}", data)
    if not m:
        return None, None
    codes = set()
    for item in m.group(2).split(","):
        k = item.split("=")[0].strip()
        if "..." in k:
            a, b = k.split("...")
            codes.update(range(int(a, 16), int(b, 16) + 1))
        else:
            codes.add(int(k, 16))
    return int(m.group(1)), codes


def _int_field(text):
    # "uint32 0..999999999 W" / "int16 -32767..32766 A" -> (bytes, signed, lo, hi)
    m = re.match(r"(u?)int(8|16|32) (-?\d+)\.\.(-?\d+)", text.strip())
    if not m:
        return None
    return int(m.group(2)) // 8, m.group(1) != "u", int(m.group(3)), int(m.group(4))


def check_edt(row, edt):
    """None if edt is a valid value of the property row, else the reason."""
    data = row["data"]
    mx = row["max"]
    if mx != "var" and len(edt) > int(mx):
        return "longer than %s bytes" % mx
    if data.startswith("raw"):
        sizes = [int(x) for x in re.findall(r"raw (\d+) B", data)]
        rng = re.match(r"raw (\d+)–(\d+) B", data)
        if rng:
            return None if int(rng.group(1)) <= len(edt) <= int(rng.group(2)) else "size %d" % len(edt)
        return None if len(edt) in sizes else "size %d, not %s" % (len(edt), sizes)
    if data.startswith("state"):
        n, codes = _states(data)
        if len(edt) != n:
            return "size %d, not %d" % (len(edt), n)
        v = int.from_bytes(edt, "big")
        return None if v in codes else "0x%X not in %s" % (v, sorted(codes))
    if data.startswith("object{"):
        fields = [f.split(":", 1)[1] for f in data[len("object{"):-1].split("; ")]
        if fields[0].startswith("uint8 0..") and fields[1].startswith("raw"):  # size-prefixed bytes
            ok = len(edt) >= 1 and edt[0] == len(edt) - 1 <= int(fields[0].split("..")[1])
            return None if ok else "length prefix"
        if fields[0].startswith(("uint8 0..", "uint8 1..")) and "array" in fields[1]:  # count + items
            m = re.search(r"raw (\d+) B", fields[1])
            return None if len(edt) >= 1 and len(edt) == 1 + edt[0] * int(m.group(1)) else "count/items"
        o = 0
        for f in fields:
            spec = _int_field(f)
            if spec is None:
                return "unchecked object field %r" % f
            size, signed, lo, hi = spec
            if o + size > len(edt):
                return "short object"
            v = int.from_bytes(edt[o:o + size], "big", signed=signed)
            if not lo <= v <= hi:
                return "field %d out of %d..%d" % (v, lo, hi)
            o += size
        return None if o == len(edt) else "object size %d, not %d" % (len(edt), o)
    spec = _int_field(data)
    if spec:
        size, signed, lo, hi = spec
        if len(edt) != size:
            return "size %d, not %d" % (len(edt), size)
        v = int.from_bytes(edt, "big", signed=signed)
        return None if lo <= v <= hi else "%d out of %d..%d" % (v, lo, hi)
    return "unchecked type %r" % data
