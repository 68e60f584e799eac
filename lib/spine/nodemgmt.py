# NodeManagement (entity [0], feature 0, role special; spine.md section 5): its discovery
# entry, the detailed discovery data streamed from the device model, use case data,
# subscription and binding data, destination list.
from compat import const
from spine import datagram as D
from spine import device as DV
from spine.table import uint32

_OP_READ = const(1)  # spine.device's possibleOperations flag

DD = "nodeManagementDetailedDiscoveryData"
UCD = "nodeManagementUseCaseData"
SUB_DATA = "nodeManagementSubscriptionData"
SUB_REQ = "nodeManagementSubscriptionRequestCall"
SUB_DEL = "nodeManagementSubscriptionDeleteCall"
BIND_DATA = "nodeManagementBindingData"
BIND_REQ = "nodeManagementBindingRequestCall"
BIND_DEL = "nodeManagementBindingDeleteCall"
DEST = "nodeManagementDestinationListData"


def node_management():
    # its functions are listed from _FUNCTIONS: NodeManagement is served by spine.session
    # itself, never through Function objects
    return DV.Feature(0, "NodeManagement", "special")


# NodeManagement's functions, (name, possibleOperations), in the order spine-go announces them
# (capture 20): literals, so that the table is a constant in flash when frozen
_FUNCTIONS = (
    ("nodeManagementUseCaseData", _OP_READ),
    ("nodeManagementSubscriptionData", _OP_READ),
    ("nodeManagementSubscriptionDeleteCall", 0),
    ("nodeManagementBindingData", _OP_READ),
    ("nodeManagementBindingDeleteCall", 0),
    ("nodeManagementDestinationListData", _OP_READ),
    ("nodeManagementDetailedDiscoveryData", _OP_READ),
    ("nodeManagementSubscriptionRequestCall", 0),
    ("nodeManagementBindingRequestCall", 0),
)


# possibleOperations by the flags (read 1, read partial 2, write 4, write partial 8) as the
# SPINE dialect writes {"read": {"partial": {}}, "write": {}}: constants in flash, each written
# whole (one writer call per function of a discovery reply instead of up to twelve)
_OPS_JSON = (
    b"[]",
    b'[{"read":[]}]',
    b'[{"read":[{"partial":[]}]}]',
    b'[{"read":[{"partial":[]}]}]',
    b'[{"write":[]}]',
    b'[{"read":[]},{"write":[]}]',
    b'[{"read":[{"partial":[]}]},{"write":[]}]',
    b'[{"read":[{"partial":[]}]},{"write":[]}]',
    b'[{"write":[{"partial":[]}]}]',
    b'[{"read":[]},{"write":[{"partial":[]}]}]',
    b'[{"read":[{"partial":[]}]},{"write":[{"partial":[]}]}]',
    b'[{"read":[{"partial":[]}]},{"write":[{"partial":[]}]}]',
    b'[{"write":[{"partial":[]}]}]',
    b'[{"read":[]},{"write":[{"partial":[]}]}]',
    b'[{"read":[{"partial":[]}]},{"write":[{"partial":[]}]}]',
    b'[{"read":[{"partial":[]}]},{"write":[{"partial":[]}]}]',
)


def emit_ops(w, ops):
    w.raw(_OPS_JSON[ops & 15])


def _device_description(w, device):
    w.obj_begin()
    w.member("deviceAddress")
    w.obj_begin()
    w.member("device")
    w.string(device.address)
    w.obj_end()
    w.member("deviceType")
    w.string(device.type)
    w.member("networkFeatureSet")
    w.string("smart")
    w.obj_end()


def emit_discovery(w, device, entities, change):
    """The nodeManagementDetailedDiscoveryData value of entities: all the device's (change
    None), or (partial notify) the ones marked lastStateChange change ("added" with their
    features, "removed" without)."""
    dev = device.address
    emit_address = D.emit_address
    w.obj_begin()
    w.member("specificationVersionList")
    w.obj_begin()
    w.member("specificationVersion")
    w.list_begin()
    w.string(D.SPEC_VERSION)
    w.list_end()
    w.obj_end()
    w.member("deviceInformation")
    w.obj_begin()
    w.member("description")
    _device_description(w, device)
    w.obj_end()
    w.member("entityInformation")
    w.list_begin()
    for e in entities:
        w.obj_begin()
        w.member("description")
        w.obj_begin()
        w.member("entityAddress")
        emit_address(w, dev, e.address)
        w.member("entityType")
        w.string(e.type)
        if change:
            w.member("lastStateChange")
            w.string(change)
        w.obj_end()
        w.obj_end()
    w.list_end()
    if change != "removed":
        w.member("featureInformation")
        w.list_begin()
        for e in entities:
            for f in e.features:
                w.obj_begin()
                w.member("description")
                w.obj_begin()
                w.member("featureAddress")
                emit_address(w, dev, e.address, f.fid)
                w.member("featureType")
                w.string(f.type)
                w.member("role")
                role = f.role
                w.string(role)
                special = role == "special"
                fns = _FUNCTIONS if special else f.functions
                if fns:
                    w.member("supportedFunction")
                    w.list_begin()
                    for fn in fns:
                        if special:
                            name, ops = fn
                        else:
                            name = fn.name
                            ops = fn.ops
                        w.obj_begin()
                        w.member("function")
                        w.string(name)
                        w.member("possibleOperations")
                        emit_ops(w, ops)
                        w.obj_end()
                    w.list_end()
                d = f.description
                if d:
                    w.member("description")
                    w.string(d)
                w.obj_end()
                w.obj_end()
        w.list_end()
    w.obj_end()


def emit_usecases(w, device_address, usecases):
    """usecases: list of (entity tuple, actor, [(name, version, scenarios tuple, subrevision)])."""
    w.obj_begin()
    if not usecases:
        w.obj_end()
        return
    w.member("useCaseInformation")
    w.list_begin()
    for entity, actor, support in usecases:
        w.obj_begin()
        w.member("address")
        D.emit_address(w, device_address, entity)
        w.member("actor")
        w.string(actor)
        w.member("useCaseSupport")
        w.list_begin()
        for name, version, scenarios, rev in support:
            w.obj_begin()
            w.member("useCaseName")
            w.string(name)
            w.member("useCaseVersion")
            w.string(version)
            w.member("useCaseAvailable")
            w.boolean(True)
            w.member("scenarioSupport")
            w.list_begin()
            for s in scenarios:
                w.integer(s)
            w.list_end()
            w.member("useCaseDocumentSubRevision")
            w.string(rev)
            w.obj_end()
        w.list_end()
        w.obj_end()
    w.list_end()
    w.obj_end()


def emit_links(w, kind, links):
    """subscriptionData / bindingData: kind "subscription" or "binding"; links: list of
    (id, client Addr, server Addr)."""
    w.obj_begin()
    if not links:  # no entries: no list member (spine.table.emit_list)
        w.obj_end()
        return
    w.member(kind + "Entry")
    w.list_begin()
    for lid, client, server in links:
        w.obj_begin()
        w.member(kind + "Id")
        w.integer(lid)
        w.member("clientAddress")
        D.emit_addr(w, client)
        w.member("serverAddress")
        D.emit_addr(w, server)
        w.obj_end()
    w.list_end()
    w.obj_end()


def emit_destinations(w, device):
    w.obj_begin()
    w.member("nodeManagementDestinationData")
    w.list_begin()
    w.obj_begin()
    w.member("deviceDescription")
    _device_description(w, device)
    w.obj_end()
    w.list_end()
    w.obj_end()


def link_request(tree):
    """(client Addr, server Addr, server feature type) from a subscriptionRequest or
    bindingRequest tree, or None when malformed."""
    if not isinstance(tree, dict):
        return None
    req = tree.get("subscriptionRequest") or tree.get("bindingRequest")
    if not isinstance(req, dict):
        return None
    c = _addr(req.get("clientAddress"))
    s = _addr(req.get("serverAddress"))
    t = req.get("serverFeatureType")
    if c is None or s is None or (t is not None and not isinstance(t, str)):
        return None
    return c, s, t


def link_delete(tree):
    """(id or None, client Addr or None, server Addr or None) of a delete call, or None."""
    if not isinstance(tree, dict):
        return None
    d = tree.get("subscriptionDelete") or tree.get("bindingDelete")
    if not isinstance(d, dict):
        return None
    lid = d.get("subscriptionId", d.get("bindingId"))
    if lid is not None and not isinstance(lid, int):
        return None
    c = d.get("clientAddress")
    s = d.get("serverAddress")
    c = _addr(c) if c is not None else None
    s = _addr(s) if s is not None else None
    return lid, c, s


def _addr(d):
    if not isinstance(d, dict):
        return None
    dev = d.get("device")
    ent = d.get("entity")
    feat = d.get("feature")
    if dev is not None and not isinstance(dev, str):
        return None
    if not isinstance(ent, list) or not ent or len(ent) > 8:
        return None
    for x in ent:
        if not uint32(x):
            return None
    if not uint32(feat):
        return None
    return D.Addr(dev, tuple(ent), feat)
