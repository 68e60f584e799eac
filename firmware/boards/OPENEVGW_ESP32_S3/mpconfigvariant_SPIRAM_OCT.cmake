# Octal PSRAM (ESP32-S3 modules with R8 in the name)
list(APPEND SDKCONFIG_DEFAULTS
    boards/sdkconfig.spiram_oct
)

list(APPEND MICROPY_DEF_BOARD
    MICROPY_HW_BOARD_NAME="OpenEVGW ESP32-S3 with octal PSRAM"
)
