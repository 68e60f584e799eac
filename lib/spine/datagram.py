# SPINE datagrams (spine.md sections 2-4): a streaming reader that keeps the header and hands
# the one command's data element to a consumer chosen once the header is known, and the
# writer side that emits headers, results and whole datagrams into an eejson Writer.
from compat import const
from eejson.dialect import Path, Tree
from spine.table import uint32

SPEC_VERSION = "1.3.0"

# cmdClassifier values
READ = "read"
REPLY = "reply"
NOTIFY = "notify"
WRITE = "write"
CALL = "call"
RESULT = "result"
CLASSIFIERS = (READ, REPLY, NOTIFY, WRITE, CALL, RESULT)

# resultData errorNumber (spine-go model/result.go)
E_OK = const(0)
E_GENERAL = const(1)
E_DEST_UNKNOWN = const(4)
E_NOT_SUPPORTED = const(6)
E_REJECTED = const(7)
E_RFE_COMBINATION = const(8)
E_BINDING_NEEDED = const(9)

_MAX_ENTITY = const(8)
_TREE_EVENTS = const(1500)  # a write or call worth of data; discovery replies are streamed


class DatagramError(ValueError):
    pass


class Addr:
    """A feature address; entity is a tuple. device None: not given (first discovery read)."""

    def __init__(self, device, entity, feature):
        self.device = device
        self.entity = entity
        self.feature = feature

    def same(self, other):
        return self.entity == other.entity and self.feature == other.feature and (
            self.device is None or other.device is None or self.device == other.device
        )

    def __repr__(self):
        return "%s%s:%s" % (self.device or "", list(self.entity), self.feature)


class BoundedTree(Tree):
    # The data of a write, call or small notify, built whole, with a hard cap so that no
    # input grows it without bound. Reusable through reset(): its path state alone is ~1.5 KB
    # (64-bit host) that a new tree per datagram would allocate.
    def __init__(self):
        super().__init__(None, True)
        self.events = 0

    def reset(self):
        Path.reset(self)
        self.result = None
        del self._stack[:]  # frames left by a message that failed halfway
        self.events = 0

    def _count(self):
        self.events += 1
        if self.events > _TREE_EVENTS:
            raise DatagramError("data element too large")

    def start_object(self):
        self._count()
        super().start_object()

    def start_array(self):
        self._count()
        super().start_array()

    def value(self, v):
        self._count()
        super().value(v)


class Incoming(Path):
    """Consumer of one datagram's events (eejson reader).

    route(incoming, name) is called when the data element of the command starts (the header
    is complete by then) and returns the consumer for its value, or None to skip it. After
    the message: src, dst, counter, ref, classifier, ack, function, partial, delete,
    selectors, elements (of the partial or read filter), del_selectors, del_elements (of a
    delete filter), data_name, data (the routed consumer).
    """

    def __init__(self, route):
        super().__init__()
        self._route = route
        self._ent = []
        self.owner = None  # free for the router's use (spine.session: the reading session)
        self.reset()

    def release(self):
        """Lets go of the routed consumer, its data and the owner (an idle Incoming kept for
        reuse holds on to nothing of the last datagram's consumers)."""
        self.data = None
        self._sub = None
        self.owner = None

    def reset(self):
        # 29 attributes with Path's fill a 29-slot member table; 31 took 37 (no command count:
        # data_name is set by the first; the routed value always starts at depth 4)
        Path.reset(self)
        self.src = Addr(None, (), None)
        self.dst = Addr(None, (), None)
        self.counter = None
        self.ref = None
        self.classifier = None
        self.ack = False
        self.function = None
        self.partial = False
        self.delete = False
        self.selectors = None
        self.elements = None
        self.del_selectors = None
        self.del_elements = None
        self._fsel = None
        self._felem = None
        self._fdel = False
        self.data_name = None
        self.data = None
        self._sub = None
        self._vd = 0

    # Forwarding of the data element's value to the routed consumer: an event belongs to the
    # value when it happens at or below the container depth where the value started (_vd).

    def start_object(self):
        if self._sub and self._d >= self._vd:
            self._sub.start_object()
        Path.start_object(self)

    def end_object(self):
        if self._sub and self._d > self._vd:
            self._sub.end_object()
        Path.end_object(self)

    def start_array(self):
        if self._sub and self._d >= self._vd:
            self._sub.start_array()
        Path.start_array(self)

    def end_array(self):
        if self._sub and self._d > self._vd:
            self._sub.end_array()
        Path.end_array(self)

    def key(self, k):
        if self._sub and self._d - 1 >= self._vd:
            self._sub.key(k)
        Path.key(self, k)

    def value(self, v):
        if self._sub and self._d >= self._vd:
            self._sub.value(v)
        Path.value(self, v)

    # path hooks

    def enter(self):
        n = self.n
        keys = self.keys
        if n == 4 and keys[0] == "datagram" and keys[1] == "payload" and keys[2] == "cmd":
            k = keys[3]
            if k != "function" and k != "filter":
                if self.data_name is not None:  # set by the first command only
                    raise DatagramError("more than one command")
                if self.classifier is None:
                    raise DatagramError("payload before header or no cmdClassifier")
                self.data_name = k
                sub = self._route(self, k)
                self.data = sub
                self._sub = sub  # until leave() at this depth, 4
                self._vd = self._d
        elif n >= 5 and keys[3] == "filter" and keys[2] == "cmd":
            k = keys[n - 1]
            if n == 6 and keys[4] == "cmdControl":
                if k == "partial":
                    self.partial = True
                elif k == "delete":
                    self.delete = True
                    self._fdel = True
            elif n == 6 and keys[4].endswith("Elements"):
                if self._felem is None:
                    self._felem = []
                if len(self._felem) < 16:
                    self._felem.append(k)
        elif n == 3 and keys[1] == "header" and keys[2] in ("addressSource", "addressDestination"):
            self._ent = []

    def leave(self):
        n = self.n
        keys = self.keys
        if self._sub is not None and n == 4:
            self._sub = None
        elif n == 4 and keys[1] == "header" and keys[3] == "entity":
            a = self.src if keys[2] == "addressSource" else self.dst if keys[2] == "addressDestination" else None
            if a is not None:
                a.entity = tuple(self._ent)

    def leaf(self, v):
        n = self.n
        if self._sub is not None or n < 3:
            return
        keys = self.keys
        if keys[0] != "datagram":
            return
        if keys[1] == "header":
            k = keys[2]
            if n == 3:
                if k == "msgCounter":
                    self.counter = _uint(v)
                elif k == "msgCounterReference":
                    self.ref = _uint(v)
                elif k == "cmdClassifier":
                    if v not in CLASSIFIERS:
                        raise DatagramError("unknown cmdClassifier")
                    self.classifier = v
                elif k == "ackRequest":
                    self.ack = v is True
            elif n == 4 and (k == "addressSource" or k == "addressDestination"):
                a = self.src if k == "addressSource" else self.dst
                f = keys[3]
                if f == "device":
                    if not isinstance(v, str):
                        raise DatagramError("device must be a string")
                    a.device = v
                elif f == "feature":
                    a.feature = _uint(v)
                elif f == "entity":
                    if len(self._ent) >= _MAX_ENTITY:
                        raise DatagramError("entity address too long")
                    self._ent.append(_uint(v))
        elif keys[1] == "payload" and n >= 4 and keys[2] == "cmd":
            if n == 4 and keys[3] == "function":
                self.function = v if isinstance(v, str) else None
            elif n == 6 and keys[3] == "filter" and keys[4].endswith("Selectors"):
                if self._fsel is None:
                    self._fsel = {}
                if len(self._fsel) < 8:
                    self._fsel[keys[5]] = v

    # a filter is one element of the filter list: a delete filter's selectors and elements
    # say what to remove, the others what to read or write (spine.md 3.2)

    def item_begin(self):
        if self.n == 4 and self.keys[3] == "filter":
            self._filter_end()

    def item_end(self):
        if self.n == 4 and self.keys[3] == "filter":
            self._filter_end()

    def _filter_end(self):
        if self._fdel:
            self.del_selectors = self._fsel or {}
            self.del_elements = self._felem
        elif self._fsel is not None or self._felem is not None:
            self.selectors = self._fsel
            self.elements = self._felem
        self._fsel = None
        self._felem = None
        self._fdel = False

    def check(self):
        """After the message: raises DatagramError unless it is a usable datagram."""
        if self.classifier is None or self.counter is None:
            raise DatagramError("header incomplete")
        if self.src.feature is None or self.dst.feature is None or not self.src.entity:
            raise DatagramError("address incomplete")
        if self.data_name is None:
            raise DatagramError("no command")
        self._filter_end()  # filters written as plain objects have no item events


def _uint(v):
    if not uint32(v):
        raise DatagramError("expected an unsigned integer")
    return v


# ---- output ------------------------------------------------------------------------------------


def emit_address(w, device, entity, feature=None):
    # {device?, entity, feature?} from its parts, so that emitters need no Addr per run
    w.obj_begin()
    if device is not None:
        w.member("device")
        w.string(device)
    w.member("entity")
    w.list_begin()
    for e in entity:
        w.integer(e)
    w.list_end()
    if feature is not None:
        w.member("feature")
        w.integer(feature)
    w.obj_end()


def emit_addr(w, a):
    emit_address(w, a.device, a.entity, a.feature)


class Out:
    """One outgoing datagram: header values and the command's body emitter.

    body(w, arg) writes the members of the one CmdType (function, filter, data element).
    """

    def __init__(self, src, dst, counter, classifier, body, arg=None, ref=None, ack=False):
        self.src = src
        self.dst = dst
        self.counter = counter
        self.classifier = classifier
        self.body = body
        self.arg = arg
        self.ref = ref
        self.ack = ack

    def emit(self, w):
        w.plain_begin()
        w.member("datagram")
        w.obj_begin()
        w.member("header")
        w.obj_begin()
        w.member("specificationVersion")
        w.string(SPEC_VERSION)
        w.member("addressSource")
        emit_addr(w, self.src)
        w.member("addressDestination")
        emit_addr(w, self.dst)
        w.member("msgCounter")
        w.integer(self.counter)
        if self.ref is not None:
            w.member("msgCounterReference")
            w.integer(self.ref)
        w.member("cmdClassifier")
        w.string(self.classifier)
        if self.ack:
            w.member("ackRequest")
            w.boolean(True)
        w.obj_end()
        w.member("payload")
        w.obj_begin()
        w.member("cmd")
        w.list_begin()
        w.obj_begin()
        self.body(w, self.arg)
        w.obj_end()
        w.list_end()
        w.obj_end()
        w.obj_end()
        w.plain_end()


def body_result(w, arg):
    # arg: (errorNumber, description or None)
    w.member("resultData")
    w.obj_begin()
    w.member("errorNumber")
    w.integer(arg[0])
    if arg[1]:
        w.member("description")
        w.string(arg[1])
    w.obj_end()


def body_empty_read(w, name):
    w.member(name)
    w.obj_begin()
    w.obj_end()
