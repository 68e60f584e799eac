# Consumers that make the EEBUS dialect convenient without building a tree.
#
# In the dialect an object is an array of single-key objects, [{"a":1},{"b":[1,2]}], and a
# list of objects an array of such arrays. Path follows the keys of the open objects, so
# {"datagram":[{"header":[{"msgCounter":7}]}]} delivers 7 at the path
# ("datagram", "header", "msgCounter"): arrays add nothing to the path, list elements are
# counted (index()). The SHIP envelope's unwrapped payload {"payload":{"datagram":[...]}}
# and a plain JSON object with several keys work the same way.
#
# Subclass hooks (all optional):
#   leaf(v)       a scalar at the current path (each element of a list of scalars too)
#   enter()       a key was read: the path now ends with it
#   leave()       the value of the last key is complete; the path still ends with it
#   item_begin()  an element of a list of objects (an array in an array) starts; index()
#   item_end()    ... and ends
# State, readable in the hooks: keys[0:n] the path, path() as a tuple, at()/under() to match.
#
# Tree builds plain Python values (for tests, tools, and the small subtrees the SPINE layer
# wants whole): an array whose elements are all single-key objects becomes a dict, any
# other array a list. `[]` is ambiguous (empty object or empty list): it becomes [] and a
# caller that expects an object must accept an empty list (ship.md 12.2).
from array import array

from compat import const

from eejson.reader import Consumer, parse, to_float

_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")

_MAX_DEPTH = const(32)
_OBJ = const(1)  # an object whose key has not been read yet
_OBJ_KEYED = const(2)
_ARR = const(3)


class Path(Consumer):
    # share: a Path that stays idle while this one is in use, whose per-depth arrays this one
    # takes over instead of making its own (~400 B 32-bit; SPINE's per-datagram readers of a
    # peer's discovery and use case data borrow those of the session's idle data tree)
    def __init__(self, share=None):
        if share is not None:
            self.keys = share.keys
            self._kind = share._kind
            self._cnt = share._cnt
            self._kd = share._kd
        else:
            self.keys = [None] * _MAX_DEPTH
            self._kind = bytearray(_MAX_DEPTH + 1)  # per open container
            self._cnt = array("i", [0] * (_MAX_DEPTH + 1))  # per open array: list elements so far
            self._kd = bytearray(_MAX_DEPTH)  # per key: depth of the object holding it
        self.n = 0
        self._d = 0

    def reset(self):
        self.n = 0
        self._d = 0

    # hooks
    def leaf(self, v):
        pass

    def enter(self):
        pass

    def leave(self):
        pass

    def item_begin(self):
        pass

    def item_end(self):
        pass

    # queries
    def path(self):
        return tuple(self.keys[: self.n])

    def at(self, pattern):
        # the path is exactly pattern; "*" matches any one key
        if len(pattern) != self.n:
            return False
        return self._match(pattern)

    def under(self, pattern):
        # the path starts with pattern (or equals it)
        if len(pattern) > self.n:
            return False
        return self._match(pattern)

    def _match(self, pattern):
        keys = self.keys
        i = 0
        for p in pattern:
            if p != "*" and p != keys[i]:
                return False
            i += 1
        return True

    def index(self, level=-1):
        # Index of the current element of the list that is the value of keys[level] (the
        # innermost key by default); -1 when that value is not a list (or none started).
        n = self.n
        if level < 0:
            level += n
        if level < 0 or level >= n:
            d = 0
        else:
            d = self._kd[level] + 1
        if d >= self._d or self._kind[d] != _ARR:
            return -1
        return self._cnt[d] - 1

    # events from the reader
    def start_object(self):
        d = self._d
        self._kind[d] = _OBJ
        self._d = d + 1

    def end_object(self):
        d = self._d - 1
        self._d = d
        if self._kind[d] == _OBJ_KEYED:
            self.leave()
            self.n -= 1

    def key(self, k):
        d = self._d - 1
        kind = self._kind
        n = self.n
        if kind[d] == _OBJ_KEYED:
            # a plain object with several members: the next key replaces the last
            self.leave()
            self.keys[n - 1] = k
        else:
            kind[d] = _OBJ_KEYED
            self.keys[n] = k
            self._kd[n] = d
            self.n = n + 1
        self.enter()

    def start_array(self):
        d = self._d
        item = d and self._kind[d - 1] == _ARR
        if item:
            self._cnt[d - 1] += 1
        self._kind[d] = _ARR
        self._cnt[d] = 0
        self._d = d + 1
        if item:
            self.item_begin()

    def end_array(self):
        d = self._d - 1
        self._d = d
        if d and self._kind[d - 1] == _ARR:
            self.item_end()

    def value(self, v):
        d = self._d
        if d and self._kind[d - 1] == _ARR:
            self._cnt[d - 1] += 1
        self.leaf(v)


class Tree(Path):
    # Builds the value at key path `at` ("*" wildcards; None: the whole message). Each one
    # found goes to found(path, value); by default the whole message lands in .result and
    # matches of a pattern in .results as (path, value). exact=True keeps decimals as
    # (mantissa, scale) instead of floats.
    def __init__(self, at=None, exact=False):
        super().__init__()
        self.pattern = at
        self.exact = exact
        self.result = None
        self.results = []
        self._stack = []  # frames [container, is_dict, all_single_key_objects, pending_key]

    def found(self, path, v):
        if self.pattern is None:
            self.result = v
        else:
            self.results.append((path, v))

    def _want(self):
        p = self.pattern
        return p is None or self.at(p)

    def _add(self, v, single_obj):
        st = self._stack
        if not st:
            self.found(self.path(), v)
            return
        f = st[-1]
        if f[1]:
            f[0][f[3]] = v
        else:
            f[0].append(v)
            if not single_obj:
                f[2] = False

    def start_object(self):
        if self._stack or self._want():
            self._stack.append([{}, True, True, None])
        super().start_object()

    def end_object(self):
        super().end_object()
        st = self._stack
        if st:
            o = st.pop()[0]
            self._add(o, len(o) == 1)

    def start_array(self):
        if self._stack or self._want():
            self._stack.append([[], False, True, None])
        super().start_array()

    def end_array(self):
        super().end_array()
        st = self._stack
        if st:
            f = st.pop()
            lst = f[0]
            if lst and f[2]:
                o = {}
                for e in lst:
                    o.update(e)
                self._add(o, False)
            else:
                self._add(lst, False)

    def key(self, k):
        st = self._stack
        if st:
            st[-1][3] = k
        super().key(k)

    def value(self, v):
        super().value(v)
        if isinstance(v, tuple) and not self.exact:
            v = to_float(v)
        if self._stack or self._want():
            self._add(v, False)


def build(data, at=None, chunk=0, max_str=256, exact=False):
    # Parse a whole message (bytes) into plain values; see Tree.
    t = parse(data, Tree(at, exact), max_str, chunk)
    return t.result if at is None else t.results
