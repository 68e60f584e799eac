# The ECHONET Lite engine (lib/echonet) against the service rules, byte for byte; run under
# CPython (test_echonet.py) and the MicroPython unix port (test_cases_mpy.py).
from binascii import hexlify, unhexlify

from charger import Charger, SRC_ECHONET
from echonet import objects as ob
from echonet.engine import TX_MAX, Engine, check

IDENT = b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a"


def new(discharges=False, **kw):
    ch = Charger(6, 16, 3, 230)
    ch.update(link=True, state="A", plugged=False, charging=False, error=0, power=0, total_wh=123456)
    e = Engine(ch, ident=IDENT, discharges=discharges, product="HostSim", serial="SN0001", **kw)
    return e, ch


def decode_map(edt):
    # the test's own reading of a property map (Appendix 1), to check the engine's encoder
    if not edt:
        return []
    if edt[0] < 16:
        return sorted(edt[1:1 + edt[0]])
    return sorted(((bit + 8) << 4) | i for i in range(16) for bit in range(8) if edt[1 + i] >> bit & 1)


def bitmap(epcs):
    # the 16-byte membership bitmap of EPCs 0x80..0xFF (Appendix 1): byte = low nibble,
    # bit = high nibble - 8; the reference encoding objects.py's constants are checked against
    m = bytearray(16)
    for e in epcs:
        m[e & 0x0F] |= 1 << ((e >> 4) - 8)
    return m


def encode_map(epcs):
    # EDT of a property map (0x9D/0x9E/0x9F): [count, EPC...] below 16 properties,
    # [count] + the 16-byte bitmap from 16 on
    n = len(epcs)
    if n < 16:
        return bytes([n] + sorted(epcs))
    return bytes([n]) + bytes(bitmap(epcs))


def ask(e, h, now=0):
    b = unhexlify(h)
    n = e.feed(b, len(b), now)
    return hexlify(e.tx[:n]).decode()


def case_discovery_get_of_the_node_profile():
    # pychonet's discover(host): 0x8A 0x8C 0x83 0xD6, all answered, in request order
    e, _ = new(discharges=True)
    r = ask(e, "1081000105ff010ef00162048a008c008300d600")
    assert r == ("108100010ef00105ff0172048a03ffffff8c0c486f737453696d0000000000"
                 "8311feffffff0102030405060708090a0ef001d60401027e01"), r


def case_node_profile_mandatory_values():
    e, _ = new()
    r = ask(e, "1081000a05ff010ef00162098000820083008a00d300d400d600d700d500")
    assert r == ("1081000a0ef00105ff017209800130820401" "0e0100" "8311feffffff0102030405060708090a0ef001"
                 "8a03ffffff" "d303000001" "d4020002" "d6040102a101" "d70301" "02a1" "d5040102a101"), r


def case_get_unknown_and_unavailable_epcs_keep_order_with_pdc0():
    e, _ = new()
    # 0xF0 (unknown), 0xCE (vehicle battery: unknown), 0x80 (available), 0xCD (set-only)
    r = ask(e, "1081abcd05ff0102a1016204f000ce008000cd00")
    assert r == "1081abcd02a10105ff015204f000ce00800130cd00", r


def case_tid_echoed_byte_for_byte_and_answer_to_the_requester_seoj():
    e, _ = new()
    r = ask(e, "1081fe010ef00102a101620180" "00")
    assert r.startswith("1081fe0102a1010ef00172"), r


def case_instance_zero_means_all_instances():
    e, _ = new()
    assert ask(e, "1081000105ff0102a100620180" "00") == "1081000102a10105ff0172018001" + "30"
    assert ask(e, "1081000105ff010ef0006201d300").startswith("108100010ef00105ff0172")


def case_unknown_deoj_dropped_silently():
    e, _ = new()
    for deoj in ("027e01", "02a102", "0ef002", "013001"):
        assert ask(e, "1081000105ff01" + deoj + "62018000") == "", deoj
    assert e.n_dropped == 4 and e.n_tx == 0


def case_malformed_frames_get_no_answer():
    e, _ = new()
    for h in (
        "",
        "1081",
        "1081000105ff0102a10162",  # 11 bytes
        "1082000105ff0102a101620180",  # format 2
        "1181000105ff0102a1016201800000",  # EHD1
        "1081000105ff0102a101620280",  # OPC 2, one truncated property
        "1081000105ff0102a10162018005",  # PDC past the end
        "1081000105ff0102a101620180000000",  # trailing bytes
        "1081000105ff0102a1016e0180",  # SetGet without the get block
        "1081000105ff0102a1016e00",  # SetGet, OPCGet missing
    ):
        assert ask(e, h) == "", h


def case_responses_and_notifications_are_not_answered():
    e, _ = new()
    for esv in ("71", "72", "73", "7a", "7e", "50", "51", "52", "53", "5e", "64", "6f", "00", "ff"):
        assert ask(e, "1081000105ff0102a101" + esv + "01800130") == "", esv


def case_object_tables_are_the_property_sets_encoded():
    # objects.py holds the engine's bitmaps and maps as constants: they must be what the EPC
    # tuples encode to (the device object is the super class's properties and its class's)
    for tables, get, set_, anno, all_anno in (
        (ob.NODE_TABLES, ob.NODE_GET, ob.NODE_SET, ob.NODE_ANNO, None),
        (ob.EVC_TABLES, ob.SUPER_GET + ob.EVC_GET, ob.SUPER_SET + ob.EVC_SET, ob.SUPER_ANNO + ob.EVC_ANNO,
         ob.EVC_ANNO_ALL),
        (ob.EVCD_TABLES, ob.SUPER_GET + ob.EVCD_GET, ob.SUPER_SET + ob.EVCD_SET, ob.SUPER_ANNO + ob.EVCD_ANNO,
         ob.EVCD_ANNO_ALL),
    ):
        assert tables == (bytes(bitmap(get)), bytes(bitmap(set_)), encode_map(anno), encode_map(set_),
                          encode_map(get))
        assert all_anno is None or all_anno == anno


def case_property_maps_list_and_bitmap_forms():
    e, _ = new()
    r = ask(e, "1081000205ff0102a10162039d009f009e00")
    b = unhexlify(r)
    assert b[10] == 0x72 and b[11] == 3  # Get_Res
    # 0x9D list form: 5 properties
    assert b[12] == 0x9D and b[13] == 6 and decode_map(b[14:20]) == [0x80, 0x81, 0x88, 0xC7, 0xDA]
    # 0x9F bitmap form: 30 properties
    assert b[20] == 0x9F and b[21] == 17 and b[22] == 30
    got = decode_map(b[22:39])
    assert 0xC5 in got and 0xDA in got and 0x9F in got and len(got) == 30
    assert b[39] == 0x9E and decode_map(b[41:41 + b[40]]) == [0x81, 0xCD, 0xDA, 0xEB, 0xED]


def case_map_encoding_threshold():
    fifteen = list(range(0x80, 0x8F))
    sixteen = list(range(0x80, 0x90))
    assert len(encode_map(fifteen)) == 16 and encode_map(fifteen)[0] == 15
    m = encode_map(sixteen)
    assert len(m) == 17 and m[0] == 16 and all(x == 1 for x in m[1:])
    # the reference's worked example (echonet.md section 4)
    ex = [0x80, 0x81, 0x82, 0x88, 0x8A, 0x9D, 0x9E, 0x9F, 0xC0, 0xC2, 0xC5, 0xC6, 0xC7, 0xCC, 0xD3,
          0xDA, 0xDC, 0xDD, 0xE2, 0xE4]
    assert hexlify(encode_map(ex)).decode() == "1411015120401010100100210030220202"
    assert decode_map(encode_map(ex)) == ex


def case_setc_accepted_pdc0_rejected_echoed():
    e, ch = new()
    # 0xDA standby accepted; 0xDA 0x43 (discharge) rejected; 0x80 not settable; 0xED 50 A too high
    r = ask(e, "1081000605ff0102a1016104da0144da0143800130ed0201f4", 100)
    assert r == "1081000602a10105ff015104da00da0143800130ed0201f4", r
    assert ch.request_of(SRC_ECHONET)[1] == (0, 0, 0)  # standby: a 0 A request, paused
    assert ch.effective()[2] is True


def case_setc_all_accepted_set_res():
    e, ch = new()
    assert ask(e, "1081000705ff0102a1016101ed020064", 5) == "1081000702a10105ff017101ed00"
    assert ch.request_of(SRC_ECHONET)[1] == (10, 10, 10)
    assert ask(e, "1081000805ff0102a1016201ed00") == "1081000802a10105ff017201ed020064"
    assert ask(e, "1081000905ff0102a1016101eb0400001c20", 6) == "1081000902a10105ff017101eb00"
    k, v, unit, left = ch.request_of(SRC_ECHONET)
    assert v == 7200 and left is None
    # back to charge without a setting: the limit is withdrawn... after standby and charge
    assert ask(e, "1081000a05ff0102a1016101da0144", 7).endswith("7101da00")
    assert ch.effective()[2] is True
    assert ask(e, "1081000b05ff0102a1016101da0142", 8).endswith("7101da00")
    assert ch.request_of(SRC_ECHONET)[1] == 7200  # the power setting is in force again


def case_setc_with_opc_zero():
    # pychonet sends this when its Set map filter removed every EPC
    e, _ = new()
    assert ask(e, "1081000805ff0102a1016100") == "1081000802a10105ff017100"


def case_seti_silent_on_success_sna_on_rejection():
    e, ch = new()
    assert ask(e, "1081000c05ff0102a1016001ed020064", 1) == ""
    assert ch.request_of(SRC_ECHONET)[1] == (10, 10, 10)
    assert ask(e, "1081000d05ff0102a1016002ed020064ed020001") == "1081000d02a10105ff015002ed00ed020001"


def case_setget_res_and_sna():
    e, _ = new(discharges=True)
    r = ask(e, "1081000505ff01027e016e01da014402da008000")
    assert r == "10810005027e0105ff017e01da0002da0144800130", r
    r = ask(e, "1081000605ff01027e016e01da014302da00ce00")
    assert r == "10810006027e0105ff015e01da014302da0144ce00", r


def case_inf_req_answers_unicast_inf():
    e, _ = new()
    assert ask(e, "1081001105ff0102a1016302c700f000") == "1081001102a10105ff015302c70130f000"
    assert ask(e, "1081001205ff0102a1016301c700") == "1081001202a10105ff017301c70130"


def case_infc_gets_infc_res_with_pdc0():
    e, _ = new()
    r = ask(e, "108100130ef0010ef0017402d50401027e01800130")
    assert r == "108100130ef0010ef0017a02d50080" + "00", r


def case_installation_location_set_and_persisted():
    saved = []
    e, _ = new()
    e.on_location = saved.append
    assert ask(e, "1081001405ff0102a1016101810108").endswith("7101" + "8100")
    assert ask(e, "1081001505ff0102a10162018100").endswith("7201810108")
    loc17 = "01" + "11" * 16
    assert ask(e, "1081001605ff0102a101610181" + "11" + loc17).endswith("71018100")
    assert saved == [b"\x08", unhexlify(loc17)]
    # 0x01 alone announces position data that is missing; 17 bytes need the 0x01 prefix
    assert ask(e, "1081001705ff0102a1016101810101").endswith("5101810101")
    e2, _ = new(location=unhexlify(loc17))
    assert ask(e2, "1081001505ff0102a10162018100").endswith("72018111" + loc17)


def case_values_follow_the_model():
    e, ch = new()
    ch.update(state="C", plugged=True, charging=True, power=7360, total_wh=2000000123)
    r = ask(e, "1081002005ff0102a1016206c700d300d800840085008800")
    assert r == ("1081002002a10105ff017206c70141d30400001cc0d8040000007b" "84021cc0" "85040000007b" "880142"), r
    ch.update(error=5)
    assert ask(e, "1081002105ff0102a1016202c7008800").endswith("c70140880141")
    ch.link(False)
    assert ask(e, "1081002205ff0102a1016201c700").endswith("c701ff")


def case_discharger_class_signed_power_and_extra_properties():
    e, ch = new(discharges=True)
    ch.update(power=-3000)
    r = ask(e, "1081002305ff01027e016205d300c600c900cb008900")
    assert r == ("10810023027e0105ff017205d304fffff448c60400002b20c9080000102c00002b20cb04003c00a0890200" "00"), r


def case_startup_instance_list_inf():
    e, _ = new(discharges=True)
    n = e.startup()
    assert hexlify(e.tx[:n]).decode() == "108100000ef0010ef0017301d504" + "01027e01"


def case_announce_changes_rate_limited():
    e, ch = new(announce_ms=1000)
    assert e.announce(0) == 0  # nothing changed since start-up
    ch.update(state="B", plugged=True)
    n = e.announce(10)
    assert hexlify(e.tx[:n]).decode() == "1081000002a10105ff017301c70141", hexlify(e.tx[:n])
    ch.update(error=3)
    assert e.announce(500) == 0 and e.announce_wait(500) == 510  # rate limit
    n = e.announce(1010)
    assert hexlify(e.tx[12:n]).decode() == "880141c70140", hexlify(e.tx[:n])
    # a change and back within the gap is no change
    ch.update(error=0)
    ch.update(error=3)
    assert e.announce(3000) == 0 and e.announce_wait(3000) == -1
    # a Set that changes an announced property (0xDA) is announced
    ask(e, "1081000a05ff0102a1016101da0144", 3100)
    n = e.announce(3100)
    assert hexlify(e.tx[12:n]).decode() == "da0144"


def case_oversized_answers_are_cut_to_pdc0_not_past_1472():
    e, _ = new()
    # 255 x Get 0x83 (17 bytes each) cannot fit: the tail goes out with PDC 0 (Get_SNA)
    req = unhexlify("1081000105ff0102a10162ff") + b"\x83\x00" * 255
    n = e.feed(req, len(req), 0)
    assert 0 < n <= TX_MAX and e.tx[10] == 0x52 and e.tx[11] == 255  # Get_SNA
    assert check(e.tx, n) == 12
    # a SetC whose rejected EDTs cannot all be echoed in one datagram is not answered
    big = unhexlify("1081000105ff0102a1016106") + (b"\xf0\xfa" + b"\x00" * 250) * 6
    assert e.feed(big, len(big), 0) == 0


def case_get_frame_allocates_nothing():
    import compat

    e, _ = new()
    req = unhexlify("1081000105ff0102a101620a80008800c700da00d300d800ed00eb009f00ca00")
    e.feed(req, len(req), 0)
    if compat.MICROPYTHON:
        import micropython

        micropython.heap_lock()
        try:
            n = e.feed(req, len(req), 0)
        finally:
            micropython.heap_unlock()
        assert n > 0
