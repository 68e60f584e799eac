# The local SPINE device (spine.md sections 1, 5, 11): entities and their features as the
# detailed discovery announces them. Function data lives with the application: each Function
# names an emitter of its data and, when writable, a writer.
from compat import const

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

# possibleOperations flags (read partial: only list functions offer it, spine.table); a
# feature's role is one of the strings "server", "client", "special"
OP_READ = const(1)
_OP_READ_PARTIAL = const(2)
OP_WRITE = const(4)
OP_WRITE_PARTIAL = const(8)


class Function:
    """emit(w): writes the function's data element value (an eejson dialect object).
    write(session, incoming) -> (errorNumber, description) when writable, or None after
    session.defer() when the decision comes later (session.settle()).
    freeze() -> an emitter bound to a snapshot of changing data: a send runs the emitter once
    to measure and again per buffer window, so what it writes must not change in between.
    A list function is a spine.table.Table (a Function served from rows): it also serves reads
    restricted by selectors and elements (selects)."""

    # what a function lacks is the class's None: an instance holds only the attributes it has
    # (every attribute is a slot in the instance's own table, there are 40 of them resident)
    emit = write = freeze = None
    selects = False
    ops = OP_READ  # what most offer: set on the instance only when it differs

    def __init__(self, name, ops, emit=None, write=None, freeze=None):
        self.name = name
        if ops != OP_READ:
            self.ops = ops
        if emit is not None:
            self.emit = emit
        if write is not None:
            self.write = write
        if freeze is not None:
            self.freeze = freeze

    def readable(self):
        return self.emit is not None or self.freeze is not None or self.selects

    def emitter(self):
        return self.freeze() if self.freeze else self.emit


class Feature:
    """A feature of one of our entities: fid, type, role (server, client, special), functions
    and the description announced in discovery. Its entity is where it is listed: the callers
    that need its address have it (spine.session takes entity and feature). Server is the
    class's role: an instance holds what differs (every attribute is a slot in its own table,
    and a server feature fits four)."""

    role = "server"
    description = None

    def __init__(self, fid, ftype, role, functions=(), description=None):
        self.fid = fid
        self.type = ftype
        if role != "server":
            self.role = role
        self.functions = functions
        if description is not None:
            self.description = description

    def function(self, name):
        for f in self.functions:
            if f.name == name:
                return f
        return None


class Entity:
    def __init__(self, address, etype, features):
        self.address = address  # tuple
        self.type = etype
        self.features = features


class Device:
    type = "ChargingStation"

    def __init__(self, address):
        self.address = address
        self.entities = []

    def add(self, entity):
        self.entities.append(entity)

    def remove(self, address):
        for e in self.entities:
            if e.address == address:
                self.entities.remove(e)
                return e
        return None

    def entity(self, address):
        for e in self.entities:
            if e.address == address:
                return e
        return None

    def feature(self, entity, fid):
        e = self.entity(entity)
        if e is None:
            return None
        for f in e.features:
            if f.fid == fid:
                return f
        return None
