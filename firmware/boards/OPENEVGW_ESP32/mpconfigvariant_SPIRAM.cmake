# ESP32-WROVER (4/8 MB PSRAM): the GC heap grows into PSRAM, mbedTLS may put its 16 KB
# input buffers there (sdkconfig.base: MBEDTLS_DEFAULT_MEM_ALLOC), so two SHIP sessions fit.
list(APPEND SDKCONFIG_DEFAULTS
    boards/sdkconfig.spiram_esp32
)

list(APPEND MICROPY_DEF_BOARD
    MICROPY_HW_BOARD_NAME="OpenEVGW ESP32 with SPIRAM"
)
