# Shared by the ROMFS variants: the partition table with a "romfs" partition, vfs.rom_ioctl
# (MICROPY_VFS_ROM: off in the esp32 port unless a board turns it on; with it MicroPython mounts
# the partition at /rom at start-up and puts /rom and /rom/lib on sys.path), and a frozen
# manifest without lib/.
# ESP-IDF takes a relative CONFIG_PARTITION_TABLE_CUSTOM_FILENAME from the port's directory,
# which does not know where this repository is: the absolute path goes into a fragment written
# here, at configure time, into the build directory (the port concatenates the fragments after
# this file has run).
set(GW_ROMFS_SDKCONFIG ${CMAKE_BINARY_DIR}/sdkconfig.gw_romfs)
file(WRITE ${GW_ROMFS_SDKCONFIG}
    "CONFIG_PARTITION_TABLE_CUSTOM=y\nCONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${CMAKE_CURRENT_LIST_DIR}/partitions-4MiB-romfs.csv\"\n")
list(APPEND SDKCONFIG_DEFAULTS ${GW_ROMFS_SDKCONFIG})

list(APPEND MICROPY_DEF_BOARD
    MICROPY_VFS_ROM=1
)

set(MICROPY_FROZEN_MANIFEST ${CMAKE_CURRENT_LIST_DIR}/../manifest_romfs.py)
