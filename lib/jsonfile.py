# A JSON document on flash (trust store, crash state, LPC failsafe values, ECHONET location),
# written so that a reset mid-write leaves the previous document: the text goes to a temp file
# that is then renamed over the old one. LittleFS renames over an existing file atomically;
# MicroPython's FAT driver removes the target and renames when FatFs refuses (extmod/vfs_fat.c).
import json
import os


def write(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, path)
