"""gw trust: the gateway's trust store on the host (the same JSON the firmware keeps on flash).

A running gateway picks changes up within a few seconds; pending pairing requests it has
seen are listed from pending.json beside the store.
"""

import contextlib
import json
import os
import re
import sys
import time


def configure(p):
    p.add_argument("--dir", default=".run", help="gateway data directory (default .run)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="trusted, denied and pending peers")
    for name, text in (
        ("add", "trust a peer (also approves a pending request)"),
        ("deny", "deny a peer (a pending request is aborted with 4452)"),
        ("remove", "forget a peer (trusted or denied)"),
    ):
        a = sub.add_parser(name, help=text)
        a.add_argument("ski", help="40 hex digits; spaces, dashes and colons are ignored")
        if name == "add":
            a.add_argument("--id", help="expected SHIP ID (optional)")


def _ski(text):
    s = re.sub(r"[\s:-]", "", text).lower()
    if not re.fullmatch(r"[0-9a-f]{40}", s):
        raise ValueError("SKI must have 40 hex digits, got %r" % text)
    return s


def _load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {"trusted": {}, "denied": []}
    doc.setdefault("trusted", {})
    doc.setdefault("denied", [])
    return doc


def _save(path, doc):
    # a temp file of this writer's own; the running gateway writes the same store
    tmp = "%s.%d-%d.tmp" % (path, os.getpid(), time.monotonic_ns() & 0xFFFFFF)
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


@contextlib.contextmanager
def _locked(path):
    """The store's lock directory, as lib/ship/trust.py takes it: read, change, write under it."""
    lock = path + ".lock"
    held = False
    for _ in range(200):  # 1 s; a lock older than that belongs to a writer that died
        try:
            os.mkdir(lock)
            held = True
            break
        except FileExistsError:
            time.sleep(0.005)
    try:
        yield
    finally:
        if held:
            with contextlib.suppress(OSError):
                os.rmdir(lock)


def run(args):
    store = os.path.join(args.dir, "trust.json")
    if args.action == "list":
        return _edit(args, store)
    os.makedirs(args.dir, exist_ok=True)
    with _locked(store):
        return _edit(args, store)


def _edit(args, store):
    doc = _load(store)
    if args.action == "list":
        print("trusted:")
        for ski, e in sorted(doc["trusted"].items()):
            print("  %s  id=%s  by=%s" % (ski, e.get("id") or "-", e.get("by", "user")))
        print("denied:")
        for ski in doc["denied"]:
            print("  %s" % ski)
        print("pending (waiting for approval: gw trust add SKI):")
        try:
            with open(os.path.join(args.dir, "pending.json")) as f:
                for ski, addr in sorted(json.load(f).items()):
                    print("  %s  from %s" % (ski, addr or "?"))
        except (FileNotFoundError, ValueError):
            pass
        return 0
    try:
        ski = _ski(args.ski)
    except ValueError as e:
        print("gw trust: %s" % e, file=sys.stderr)
        return 2
    os.makedirs(args.dir, exist_ok=True)
    if args.action == "add":
        doc["trusted"][ski] = {"id": args.id, "by": "user"}
        doc["denied"] = [s for s in doc["denied"] if s != ski]
    elif args.action == "deny":
        doc["trusted"].pop(ski, None)
        if ski not in doc["denied"]:
            doc["denied"].append(ski)
    else:
        had = doc["trusted"].pop(ski, None) is not None or ski in doc["denied"]
        doc["denied"] = [s for s in doc["denied"] if s != ski]
        if not had:
            print("gw trust: %s is not in %s" % (ski, store), file=sys.stderr)
            return 1
    _save(store, doc)
    print("%s %s" % (args.action, ski))
    return 0
