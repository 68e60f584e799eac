# Open EV charger gateway on an ESP32 module (WROOM: 4 MB flash, no PSRAM, Wi-Fi or Ethernet).
# Build from ports/esp32 of MicroPython 1.29 (firmware/README.md):
#   make BOARD_DIR=$GW/firmware/boards/OPENEVGW_ESP32 [BOARD_VARIANT=SPIRAM|POE]
# Relative paths below are the port's own fragments (ports/esp32/boards/); ours come from
# MICROPY_BOARD_DIR. No sdkconfig.ble: the gateway does not use Bluetooth, and leaving the
# controller out returns its DRAM to the IDF heap that TLS needs (mpconfigboard.h turns the
# bluetooth module off to match). 240 MHz: the software P-256 of a SHIP handshake is the
# longest stall of the event loop.
set(IDF_TARGET esp32)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.240mhz
    ${MICROPY_BOARD_DIR}/../sdkconfig.gateway
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

# lib/ frozen as bytecode: runs from flash instead of taking GC heap at import
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/../../manifest.py)
