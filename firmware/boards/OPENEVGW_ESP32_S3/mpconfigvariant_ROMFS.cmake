# ESP32-S3 with quad PSRAM, lib/ in a ROMFS partition instead of frozen (firmware/README.md,
# "ROMFS"; `tools/gw deploy --romfs`).
include(${MICROPY_BOARD_DIR}/../romfs.cmake)

list(APPEND MICROPY_DEF_BOARD
    MICROPY_HW_BOARD_NAME="OpenEVGW ESP32-S3 with ROMFS"
)
