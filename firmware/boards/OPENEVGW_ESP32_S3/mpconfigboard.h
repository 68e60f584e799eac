// Open EV charger gateway, ESP32-S3 with PSRAM (firmware/README.md).

#ifndef MICROPY_HW_BOARD_NAME
#define MICROPY_HW_BOARD_NAME "OpenEVGW ESP32-S3"
#endif
#define MICROPY_HW_MCU_NAME "ESP32-S3"

// The REPL on UART0 too, for modules wired through a USB-UART bridge rather than native USB
#define MICROPY_HW_ENABLE_UART_REPL (1)

// mDNS is the gateway's own (lib/mdns); the IDF responder would hold UDP 5353
#define MICROPY_HW_ENABLE_MDNS_QUERIES (0)
#define MICROPY_HW_ENABLE_MDNS_RESPONDER (0)

#define MICROPY_PY_BLUETOOTH (0)
