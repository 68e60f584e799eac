# ESP32-WROVER (4/8 MB PSRAM): the GC heap grows into PSRAM, mbedTLS may put its 16 KB
# input buffers there (sdkconfig.base: MBEDTLS_DEFAULT_MEM_ALLOC), so two SHIP sessions fit;
# sdkconfig.spiram keeps those buffers static (no MBEDTLS_DYNAMIC_BUFFER).
list(APPEND SDKCONFIG_DEFAULTS
    boards/sdkconfig.spiram_esp32
    ${MICROPY_BOARD_DIR}/sdkconfig.spiram
)

list(APPEND MICROPY_DEF_BOARD
    MICROPY_HW_BOARD_NAME="OpenEVGW ESP32 with SPIRAM"
)
