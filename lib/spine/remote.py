# What we keep of a peer's detailed discovery (spine.md section 5.2; a SMA Home Manager 2
# sends 9.6 KB): device address, entity addresses/types, feature addresses/types/roles —
# built while the message streams past, nothing else.
from compat import const
from eejson.dialect import Path

_MAX_ENTITIES = const(16)
_MAX_FEATURES = const(64)


class RemoteDevice:
    def __init__(self):
        self.device = None
        self.entities = {}  # entity tuple -> type
        self.features = {}  # (entity tuple, feature) -> (type, role)


class DiscoveryReader(Path):
    """Consumer of a nodeManagementDetailedDiscoveryData value, applied to a RemoteDevice.

    full: a reply or a notify without partial filter (entities absent from it are gone);
    a partial notify adds or removes the entities it lists (lastStateChange).
    """

    def __init__(self, remote, full):
        super().__init__()
        self.remote = remote
        self.full = full
        self._ent = []
        self._dev = None
        self._type = None
        self._role = None
        self._fid = None
        self._change = None
        if full:
            remote.entities = {}
            remote.features = {}

    def item_begin(self):
        if self.n != 1:
            return  # a nested list (supportedFunction) inside an entry
        self._ent = []
        self._type = self._role = self._fid = self._change = None

    def item_end(self):
        if self.n != 1:
            return
        r = self.remote
        ent = tuple(self._ent)
        if self.keys[0] == "entityInformation" and ent and self._type:
            if self._change == "removed":
                r.entities.pop(ent, None)
                for k in list(r.features):
                    if k[0][: len(ent)] == ent:
                        del r.features[k]
            elif len(r.entities) < _MAX_ENTITIES:
                r.entities[ent] = self._type
        elif self.keys[0] == "featureInformation" and ent and self._fid is not None and self._type:
            if len(r.features) < _MAX_FEATURES:
                r.features[(ent, self._fid)] = (self._type, self._role)

    def leaf(self, v):
        n = self.n
        if n < 3 or self.keys[1] != "description":
            return
        k = self.keys[n - 1]
        top = self.keys[0]
        if top == "deviceInformation":
            if k == "device" and isinstance(v, str):
                self.remote.device = v
        elif k == "entity" and n == 4:
            if isinstance(v, int) and len(self._ent) < 8:
                self._ent.append(v)
        elif k == "feature" and n == 4:
            self._fid = v if isinstance(v, int) else None
        elif n == 3 and isinstance(v, str):
            if k == "entityType" or k == "featureType":
                self._type = v
            elif k == "role":
                self._role = v
            elif k == "lastStateChange":
                self._change = v
