# The one SKI spelling the trust store, the configs, the mDNS browser and a user at the console
# agree on, on the ground floor so that every room may use it. The document checks of the
# configs and register maps are doccheck.Kit, which start-up lets go with its parsers.

def normalize_ski(text):
    """SKI typed by a user (any case, spaces, dashes or colons) -> 40 lower-case hex digits."""
    s = text.replace(" ", "").replace("-", "").replace(":", "").lower()
    if len(s) != 40:
        raise ValueError("SKI must have 40 hex digits")
    for ch in s:
        if ch not in "0123456789abcdef":
            raise ValueError("SKI must have 40 hex digits")
    return s
