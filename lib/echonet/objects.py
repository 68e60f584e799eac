# The objects this node presents and their property sets (MRA v1.3.1 = Appendix Release R):
# every mandatory Get/Set/announcement property of the node profile 0x0EF0, the device super
# class and the EV charger 0x02A1 or EV charger/discharger 0x027E, plus the useful optional
# ones (measured power and energy, charging current and power settings, min/max current and
# power, rated power and voltage, identification, product code and serial).
# Plain ints, not const(): only other modules read them (ob.NODE_EOJ), and a public const is
# stored all the same; the import of const would be one more global.
NODE_EOJ = 0x0EF001
CONTROLLER_EOJ = 0x05FF01  # DEOJ of our announcements (ELPython does the same)
EVC = 0x02A1  # EV charger, charge only
EVCD = 0x027E  # EV charger and discharger

NODE_GET = (0x80, 0x82, 0x83, 0x8A, 0x8C, 0x9D, 0x9E, 0x9F, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7)
NODE_SET = ()
NODE_ANNO = (0x80, 0xD5)

SUPER_GET = (0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x88, 0x8A, 0x8C, 0x8D, 0x9D, 0x9E, 0x9F)
SUPER_SET = (0x81,)
SUPER_ANNO = (0x80, 0x81, 0x88)

# 0xCE 0xCF 0xD0 0xE2 0xE4 (and 0xC0 0xC2 0xC4) describe the vehicle battery: mandatory, but
# unknown without a vehicle data link, so answered with PDC 0 inside a Get_SNA.
EVC_GET = (0xC5, 0xC7, 0xC8, 0xCA, 0xCC, 0xCE, 0xCF, 0xD0, 0xD2, 0xD3, 0xD8, 0xDA, 0xE2,
           0xE4, 0xE6, 0xEB, 0xED)
EVC_SET = (0xCD, 0xDA, 0xEB, 0xED)
EVC_ANNO = (0xC7, 0xDA)

EVCD_GET = (0x89, 0xC0, 0xC2, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCE,
            0xCF, 0xD0, 0xD2, 0xD3, 0xD8, 0xDA, 0xDC, 0xDD, 0xE1, 0xE2, 0xE4, 0xE5, 0xE6,
            0xEB, 0xED)
EVCD_SET = (0xCD, 0xDA, 0xEB, 0xED)
EVCD_ANNO = (0xC7, 0xDA, 0xDC, 0xDD, 0xE1, 0xE5)


# What the engine reads of them, as constants (in flash when frozen, nothing built at start-up):
# per object (Get bitmap, Set bitmap, 0x9D announcement map, 0x9E Set map, 0x9F Get map), the
# bitmaps in the 16-byte layout of the property maps (Appendix 1, which
# cases/echonet_cases.py checks these against); and the EPCs the device object announces.
NODE_TABLES = (  # 0x0EF0
    b"\x01\x00\x01\x21\x20\x20\x20\x20\x00\x00\x01\x00\x01\x02\x02\x02",
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    b"\x02\x80\xd5",
    b"\x00",
    b"\x0d\x80\x82\x83\x8a\x8c\x9d\x9e\x9f\xd3\xd4\xd5\xd6\xd7",
)
EVC_TABLES = (  # SUPER + EVC
    b"\x21\x01\x61\x21\x41\x11\x40\x10\x31\x00\x31\x40\x11\x43\x12\x12",
    b"\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x20\x40\x00\x50\x00\x00",
    b"\x05\x80\x81\x88\xc7\xda",
    b"\x05\x81\xcd\xda\xeb\xed",
    b"\x1e\x21\x01\x61\x21\x41\x11\x40\x10\x31\x00\x31\x40\x11\x43\x12\x12",
)
EVCD_TABLES = (  # SUPER + EVCD
    b"\x31\x41\x71\x21\x51\x51\x50\x10\x31\x11\x31\x50\x31\x63\x12\x12",
    b"\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x20\x40\x00\x50\x00\x00",
    b"\x09\x80\x81\x88\xc7\xda\xdc\xdd\xe1\xe5",
    b"\x05\x81\xcd\xda\xeb\xed",
    b"\x29\x31\x41\x71\x21\x51\x51\x50\x10\x31\x11\x31\x50\x31\x63\x12\x12",
)
EVC_ANNO_ALL = (0x80, 0x81, 0x88, 0xC7, 0xDA)
EVCD_ANNO_ALL = (0x80, 0x81, 0x88, 0xC7, 0xDA, 0xDC, 0xDD, 0xE1, 0xE5)
