# Runs lib/ship/cert.py under MicroPython over a corpus of DER blobs and prints one result line
# per blob, in the same format as host_tests/test_cert.py computes under CPython, so that both
# runtimes can be compared line by line.
# argv: corpus file (records: 4-byte big-endian length + bytes)
import sys
import gc

from ship import cert
from compat import hexlify


# the key's hash and the SKI extension, walked by the parser's own code (the device keeps only
# peer_ski; test_cert.py has the same two views under CPython)
def ski_of(der):
    b = cert._view(der)
    ks, ke, _, _ = cert._walk(b)
    return cert._ski(b, ks, ke)


def ski_extension(der):
    b = cert._view(der)
    _, _, s, n = cert._walk(b)
    return None if s < 0 else bytes(b[s : s + n])


def _result(fn, der):
    try:
        r = fn(der)
    except cert.CertError:
        return "CertError"
    except Exception as e:
        return "OTHER:" + type(e).__name__
    if r is None:
        return "None"
    if isinstance(r, str):
        return r
    return hexlify(r)


def main(path):
    first = None
    i = 0
    with open(path, "rb") as f:
        while True:
            head = f.read(4)
            if len(head) < 4:
                break
            # a memoryview, as the TLS verify callback passes the certificate
            der = memoryview(f.read(int.from_bytes(head, "big")))
            if first is None:
                first = der
            print(i, _result(cert.peer_ski, der), _result(ski_extension, der), _result(ski_of, der))
            i += 1
    # GC allocation of one peer_ski() on a memoryview (the callback's case), first record.
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    cert.peer_ski(first)
    print("ALLOC", gc.mem_alloc() - before)
    gc.enable()


main(sys.argv[1])
