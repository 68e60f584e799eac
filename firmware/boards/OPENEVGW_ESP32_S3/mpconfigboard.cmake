# Open EV charger gateway on an ESP32-S3 module with PSRAM (ESP32-S3-WROOM-1 N8R2 and alike;
# N8R8/N16R8 with BOARD_VARIANT=SPIRAM_OCT).
# Build from ports/esp32 of MicroPython 1.29 (firmware/README.md):
#   make BOARD_DIR=$GW/firmware/boards/OPENEVGW_ESP32_S3 [BOARD_VARIANT=SPIRAM_OCT]
# Default: quad-SPI PSRAM (the firmware still boots without PSRAM); SPIRAM_OCT for the octal
# PSRAM of the R8 modules. No Bluetooth (see mpconfigboard.h);
# 240 MHz for the software P-256 of SHIP handshakes.
set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.240mhz
    boards/sdkconfig.spiram_quad
    ${MICROPY_BOARD_DIR}/../sdkconfig.gateway
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/../../manifest.py)
