# ESP32-WROVER with lib/ in a ROMFS partition instead of frozen: `tools/gw deploy --romfs`
# updates lib/ without reflashing and its bytecode still runs from flash (firmware/README.md,
# "ROMFS"). PSRAM only: importing from ROMFS keeps more in the GC heap than frozen code does
# (raw code objects, qstr entries), which a WROOM cannot spare.
list(APPEND SDKCONFIG_DEFAULTS
    boards/sdkconfig.spiram_esp32
    ${MICROPY_BOARD_DIR}/sdkconfig.spiram
)
include(${MICROPY_BOARD_DIR}/../romfs.cmake)

list(APPEND MICROPY_DEF_BOARD
    MICROPY_HW_BOARD_NAME="OpenEVGW ESP32 with SPIRAM and ROMFS"
)
