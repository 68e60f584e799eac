# Olimex ESP32-POE / ESP32-POE-ISO: LAN8720 whose 50 MHz RMII clock the ESP32 drives on GPIO17
# (board_configs/olimex-esp32-poe.json: "clock": "GPIO17_OUT"). The runtime passes the same
# to network.LAN; the sdkconfig default makes the driver agree before that.
list(APPEND SDKCONFIG_DEFAULTS
    ${MICROPY_BOARD_DIR}/sdkconfig.poe
)

list(APPEND MICROPY_DEF_BOARD
    MICROPY_HW_BOARD_NAME="OpenEVGW Olimex ESP32-POE"
)
