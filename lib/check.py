# Checks on text that comes from outside (a board config, a device config, a register map, a
# peer's mDNS record, a user at the console): on the ground floor, so that every room may use
# them. normalize_ski is the one SKI spelling the trust store, the configs and the mDNS browser
# agree on.

_HEX = "0123456789abcdef"


def normalize_ski(text):
    """SKI typed by a user (any case, spaces, dashes or colons) -> 40 lower-case hex digits."""
    s = text.replace(" ", "").replace("-", "").replace(":", "").lower()
    if len(s) != 40:
        raise ValueError("SKI must have 40 hex digits")
    for ch in s:
        if ch not in _HEX:
            raise ValueError("SKI must have 40 hex digits")
    return s
