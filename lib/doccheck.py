# Checks on documents from outside (a board config, a device config, a register map), on the
# ground floor so that every room may use them: Kit is the one set of checks they refuse bad
# input with. Start-up only: the gateway lets it go with the parsers (gateway/startup.py _forget).


class Kit:
    """The checks of one kind of document. Every refusal raises err("<prefix><key>: <why>"):
    gateway.config.ConfigError, devconfig's the same with the prefix "device.", the register
    map's controller.regmap.MapError, so a refusal names the entry and callers catch what they
    caught before. The typed readers take d[key], "missing" unless a default is given."""

    def __init__(self, err, prefix=""):
        self.err = err
        self.prefix = prefix

    def fail(self, key, why):
        raise self.err("%s%s: %s" % (self.prefix, key, why))

    def need(self, cond, key, why):
        if not cond:
            self.fail(key, why)

    def obj(self, x, path):
        if type(x) is not dict:
            self.fail(path, "must be an object")
        return x

    def keys(self, d, allowed, path):
        for k in d:
            if k not in allowed:
                self.fail(path, 'unknown key "%s"' % k)

    def integer(self, d, key, path, lo, hi, default=None):
        if key not in d:
            if default is None:
                self.fail(path + "." + key, "missing")
            return default
        v = d[key]
        if type(v) is not int:
            self.fail(path + "." + key, "must be an integer")
        if not lo <= v <= hi:
            self.fail(path + "." + key, "%d out of range %d..%d" % (v, lo, hi))
        return v

    def number(self, d, key, path, default=None, positive=False):
        if key not in d:
            if default is None:
                self.fail(path + "." + key, "missing")
            return default
        v = d[key]
        if type(v) is not int and type(v) is not float:
            self.fail(path + "." + key, "must be a number")
        if v != v or v < 0 or v > 1e9 or (positive and v == 0):
            self.fail(path + "." + key, "out of range")
        return v

    def text(self, d, key, path, choices=None, default=None):
        if key not in d:
            if default is None:
                self.fail(path + "." + key, "missing")
            return default
        v = d[key]
        if type(v) is not str:
            self.fail(path + "." + key, "must be a string")
        if choices is not None and v not in choices:
            self.fail(path + "." + key, 'unknown value "%s" (one of %s)' % (v, ", ".join(choices)))
        return v

    def flag(self, d, key, path, default):
        if key not in d:
            return default
        v = d[key]
        if type(v) is not bool:
            self.fail(path + "." + key, "must be true or false")
        return v
