// Open EV charger gateway, ESP32 (firmware/README.md).

#ifndef MICROPY_HW_BOARD_NAME
// the variants set their own name from mpconfigvariant_*.cmake
#define MICROPY_HW_BOARD_NAME "OpenEVGW ESP32"
#endif
#define MICROPY_HW_MCU_NAME "ESP32"

// The gateway answers mDNS itself (lib/mdns: _ship._tcp with the TXT record SHIP needs, which
// the IDF responder cannot publish from Python). The IDF component would hold UDP 5353 without
// SO_REUSEADDR, so both halves of it stay out of this firmware.
#define MICROPY_HW_ENABLE_MDNS_QUERIES (0)
#define MICROPY_HW_ENABLE_MDNS_RESPONDER (0)

// No Bluetooth (mpconfigboard.cmake leaves out sdkconfig.ble)
#define MICROPY_PY_BLUETOOTH (0)
