# Viper sources of the EEBUS JSON hot loops, compiled at import by reader.py and writer.py
# (exec from source, as compat.xor_mask does, so that plain mpy-cross accepts every file).
# The same source runs as bytecode where the native emitter is missing and under CPython.
# reader/writer compile their source through take(), which then drops this module: a module
# loaded from .py or .mpy keeps its constants, these ~14 KB of source, in RAM for as long as
# it is loaded.
# The sources are indented with tabs: they are stored as strings in the .mpy and in flash, and
# tabs keep them ~5.6 KB smaller than spaces would.
# Native code lives outside the GC heap (IRAM on the ESP32; compiling needs a transient
# ~30 KB of GC heap on a 64-bit host, about half on the ESP32: import early, before TLS).


def build(src, viper=True):
    # The compiled functions in a dict; g["VIPER"] tells whether they are machine code.
    # Viper fails on a firmware without the native emitter, and on a literal beyond the
    # small-int range (2**30 on the ESP32): host_tests compile these sources with
    # mpy-cross -march=xtensawin so that the second never reaches a device unnoticed.
    if viper:
        try:
            import micropython

            g = {"micropython": micropython, "const": micropython.const}
            exec(src, g)
            g["VIPER"] = True
            return g
        except Exception:
            pass
    # MicroPython's compiler reads the decorator by name, whatever object it names: remove it
    src = src.replace("@micropython.viper\n", "")
    g = {"const": lambda x: x, "ptr8": None, "ptr32": None}
    exec(src, g)
    g["VIPER"] = False
    return g


def take(name):
    # build() of the source called name ("READER" or "WRITER"), then forget this module
    import sys

    import eejson

    g = build(globals()[name])
    del sys.modules["eejson.native"]
    del eejson.native
    return g


# One call consumes buf[st[POS]:end] until a token completes (returns its event, with
# st[POS] just past it) or the input runs out (returns 0). All state lives in st, so a
# token may span calls. Grammar state ex: 0 value, 1 value or ']', 2 key or '}', 3 key,
# 4 ':', 5 ',' or close, 6 done. Lexer state lx: 0 between tokens, 1 string, 2 after
# backslash, 3 \u digits, 4/5 expecting the \u of a low surrogate, 6 literal, 7.. number.
READER = """
@micropython.viper
def lex(buf: ptr8, end: int, st: ptr32, sc: ptr8) -> int:
	i = st[0]
	lx = st[1]
	ex = st[2]
	d = st[3]
	n = st[4]
	lim = st[17]
	trunc = st[7]
	u8n = st[18]
	u8lo = st[19]
	u8hi = st[20]
	ev = 0
	err = 0
	while i < end:
		c = buf[i]
		if lx == 1:
			while i < end:
				c = buf[i]
				if u8n:
					if c < u8lo or c > u8hi:
						err = 7
						break
					u8n -= 1
					u8lo = 0x80
					u8hi = 0xBF
				elif c >= 0x80:
					u8lo = 0x80
					u8hi = 0xBF
					if 0xC2 <= c <= 0xDF:
						u8n = 1
					elif c == 0xE0:
						u8n = 2
						u8lo = 0xA0
					elif 0xE1 <= c <= 0xEF:
						u8n = 2
						if c == 0xED:
							u8hi = 0x9F
					elif c == 0xF0:
						u8n = 3
						u8lo = 0x90
					elif 0xF1 <= c <= 0xF3:
						u8n = 3
					elif c == 0xF4:
						u8n = 3
						u8hi = 0x8F
					else:
						err = 7
						break
				elif c == 0x22 or c == 0x5C or c < 0x20:
					break
				if n < lim:
					sc[n] = c
					n += 1
				else:
					trunc = 1
				i += 1
			if err or i >= end:
				break
			i += 1
			if c == 0x22:
				lx = 0
				if st[6]:
					ev = 5
				else:
					ev = 6
				break
			if c == 0x5C:
				lx = 2
				continue
			i -= 1
			err = 3
			break
		if lx == 0:
			if c == 0x20 or c == 0x0A or c == 0x0D or c == 0x09:
				i += 1
				continue
			if ex == 6:
				if c == 0:
					i += 1
					continue
				err = 11
				break
			if c == 0x22:
				if ex == 2 or ex == 3:
					st[6] = 1
					ex = 4
				elif ex <= 1:
					st[6] = 0
					if d:
						ex = 5
					else:
						ex = 6
				else:
					err = 1
					break
				lx = 1
				n = 0
				lim = st[5]
				trunc = 0
				i += 1
				continue
			if c == 0x7B or c == 0x5B:
				if ex > 1:
					err = 1
					break
				if d >= 32:
					err = 2
					break
				i += 1
				if c == 0x7B:
					st[24 + d] = 1
					ex = 2
					ev = 1
				else:
					st[24 + d] = 2
					ex = 1
					ev = 3
				d += 1
				break
			if c == 0x7D or c == 0x5D:
				if d == 0:
					err = 1
					break
				k = st[23 + d]
				if c == 0x7D:
					if k != 1 or (ex != 2 and ex != 5):
						err = 1
						break
					ev = 2
				else:
					if k != 2 or (ex != 1 and ex != 5):
						err = 1
						break
					ev = 4
				d -= 1
				if d:
					ex = 5
				else:
					ex = 6
				i += 1
				break
			if c == 0x3A:
				if ex != 4:
					err = 1
					break
				ex = 0
				i += 1
				continue
			if c == 0x2C:
				if ex != 5:
					err = 1
					break
				if st[23 + d] == 1:
					ex = 3
				else:
					ex = 0
				i += 1
				continue
			if ex > 1:
				err = 1
				break
			if c == 0x2D or 0x30 <= c <= 0x39:
				sc[0] = c
				n = 1
				st[13] = 1
				if c == 0x2D:
					lx = 7
					st[11] = 0
					st[12] = 1
					st[21] = 0
				else:
					if c == 0x30:
						lx = 8
					else:
						lx = 9
					st[11] = c - 0x30
					st[12] = 0
					st[21] = 1
				if d:
					ex = 5
				else:
					ex = 6
				i += 1
				continue
			if c == 0x74:
				st[14] = 0x197AF2
				st[15] = 9
			elif c == 0x66:
				st[14] = 0xCBCF661
				st[15] = 10
			elif c == 0x6E:
				st[14] = 0x1B3675
				st[15] = 11
			else:
				err = 1
				break
			lx = 6
			if d:
				ex = 5
			else:
				ex = 6
			i += 1
			continue
		if lx >= 7:
			if 0x30 <= c <= 0x39:
				if lx == 7:
					if c == 0x30:
						lx = 8
					else:
						lx = 9
				elif lx == 8:
					err = 9
					break
				elif lx == 10:
					lx = 11
				elif lx == 12 or lx == 13:
					lx = 14
				if lx <= 9 and st[13]:
					k = st[21] + 1
					if k > 9:
						st[13] = 0
					else:
						st[21] = k
						st[11] = st[11] * 10 + c - 0x30
			elif c == 0x2E:
				if lx != 8 and lx != 9:
					err = 9
					break
				lx = 10
				st[13] = 0
			elif c == 0x65 or c == 0x45:
				if lx != 8 and lx != 9 and lx != 11:
					err = 9
					break
				lx = 12
				st[13] = 0
			elif (c == 0x2B or c == 0x2D) and lx == 12:
				lx = 13
			else:
				if lx == 7 or lx == 10 or lx == 12 or lx == 13:
					err = 9
					break
				lx = 0
				if st[13]:
					ev = 7
				else:
					ev = 8
				break
			if n >= st[5]:
				err = 10
				break
			sc[n] = c
			n += 1
			i += 1
			continue
		if lx == 2:
			o = 0
			if c == 0x22 or c == 0x5C or c == 0x2F:
				o = c
			elif c == 0x6E:
				o = 0x0A
			elif c == 0x74:
				o = 0x09
			elif c == 0x72:
				o = 0x0D
			elif c == 0x62:
				o = 0x08
			elif c == 0x66:
				o = 0x0C
			elif c == 0x75:
				lx = 3
				st[8] = 0
				st[9] = 0
				i += 1
				continue
			else:
				err = 4
				break
			if n < lim:
				sc[n] = o
				n += 1
			else:
				trunc = 1
			lx = 1
			i += 1
			continue
		if lx == 3:
			h = 0
			if 0x30 <= c <= 0x39:
				h = c - 0x30
			elif 0x61 <= c <= 0x66:
				h = c - 0x57
			elif 0x41 <= c <= 0x46:
				h = c - 0x37
			else:
				err = 5
				break
			u = (st[8] << 4) | h
			k = st[9] + 1
			if k < 4:
				st[8] = u
				st[9] = k
				i += 1
				continue
			hi = st[10]
			if hi:
				if u < 0xDC00 or u > 0xDFFF:
					err = 6
					break
				u = 0x10000 + ((hi - 0xD800) << 10) + (u - 0xDC00)
				st[10] = 0
			elif 0xD800 <= u <= 0xDBFF:
				st[10] = u
				lx = 4
				i += 1
				continue
			elif 0xDC00 <= u <= 0xDFFF:
				err = 6
				break
			k = 1
			if u >= 0x10000:
				k = 4
			elif u >= 0x800:
				k = 3
			elif u >= 0x80:
				k = 2
			if n + k <= lim:
				if k == 1:
					sc[n] = u
				elif k == 2:
					sc[n] = 0xC0 | (u >> 6)
					sc[n + 1] = 0x80 | (u & 0x3F)
				elif k == 3:
					sc[n] = 0xE0 | (u >> 12)
					sc[n + 1] = 0x80 | ((u >> 6) & 0x3F)
					sc[n + 2] = 0x80 | (u & 0x3F)
				else:
					sc[n] = 0xF0 | (u >> 18)
					sc[n + 1] = 0x80 | ((u >> 12) & 0x3F)
					sc[n + 2] = 0x80 | ((u >> 6) & 0x3F)
					sc[n + 3] = 0x80 | (u & 0x3F)
				n += k
			else:
				# keep the delivered text a prefix: nothing more is stored once cut
				lim = n
				trunc = 1
			lx = 1
			i += 1
			continue
		if lx == 4 or lx == 5:
			if (lx == 4 and c != 0x5C) or (lx == 5 and c != 0x75):
				err = 6
				break
			if lx == 4:
				lx = 5
			else:
				lx = 3
				st[8] = 0
				st[9] = 0
			i += 1
			continue
		# lx == 6: literal; st[14] holds the characters still expected, 7 bits each, first
		# lowest (8 bits would pass 2**30, the ESP32's small-int limit that viper needs)
		v = st[14]
		if c != (v & 0x7F):
			err = 8
			break
		v = v >> 7
		i += 1
		if v == 0:
			lx = 0
			ev = st[15]
			break
		st[14] = v
	if err:
		st[16] = err
		ev = 12
	st[0] = i
	st[1] = lx
	st[2] = ex
	st[3] = d
	st[4] = n
	st[17] = lim
	st[7] = trunc
	st[18] = u8n
	st[19] = u8lo
	st[20] = u8hi
	return ev


@micropython.viper
def shash(s: ptr8, n: int) -> int:
	h = 5381
	i = 0
	while i < n:
		h = ((h << 5) + h + s[i]) & 0xFFFFFF
		i += 1
	return h


@micropython.viper
def same(a: ptr8, b: ptr8, n: int) -> int:
	i = 0
	while i < n:
		if a[i] != b[i]:
			return 0
		i += 1
	return 1
"""

# st: 0 source byte index, 1 characters left, 2 output position, 3 output end
WRITER = """
@micropython.viper
def esc_len(s: ptr8, nch: int, st: ptr32) -> int:
	# escaped length of the first nch characters of s; their byte length -> st[0]
	i = 0
	k = 0
	while nch > 0:
		c = s[i]
		nch -= 1
		if c >= 0x80:
			if c == 0xE2 and s[i + 1] == 0x80 and (s[i + 2] == 0xA8 or s[i + 2] == 0xA9):
				k += 6
				i += 3
				continue
			if c >= 0xF0:
				i += 4
				k += 4
			elif c >= 0xE0:
				i += 3
				k += 3
			else:
				i += 2
				k += 2
			continue
		i += 1
		if c == 0x22 or c == 0x5C or c == 0x0A or c == 0x0D or c == 0x09 or c == 0x08 or c == 0x0C:
			k += 2
		elif c < 0x20 or c == 0x3C or c == 0x3E or c == 0x26:
			k += 6
		else:
			k += 1
	st[0] = i
	return k


@micropython.viper
def esc_copy(s: ptr8, dst: ptr8, st: ptr32) -> int:
	# escape characters from s[st[0]] into dst[st[2]:st[3]] until done or full;
	# returns the characters left
	i = st[0]
	nch = st[1]
	p = st[2]
	e = st[3]
	while nch > 0:
		c = s[i]
		if c >= 0x80:
			if c == 0xE2 and s[i + 1] == 0x80 and (s[i + 2] == 0xA8 or s[i + 2] == 0xA9):
				if p + 6 > e:
					break
				dst[p] = 0x5C
				dst[p + 1] = 0x75
				dst[p + 2] = 0x32
				dst[p + 3] = 0x30
				dst[p + 4] = 0x32
				dst[p + 5] = 0x38 + (s[i + 2] - 0xA8)
				p += 6
				i += 3
				nch -= 1
				continue
			k = 2
			if c >= 0xF0:
				k = 4
			elif c >= 0xE0:
				k = 3
			if p + k > e:
				break
			j = 0
			while j < k:
				dst[p + j] = s[i + j]
				j += 1
			p += k
			i += k
			nch -= 1
			continue
		o = 0
		if c == 0x22 or c == 0x5C:
			o = c
		elif c == 0x0A:
			o = 0x6E
		elif c == 0x0D:
			o = 0x72
		elif c == 0x09:
			o = 0x74
		elif c == 0x08:
			o = 0x62
		elif c == 0x0C:
			o = 0x66
		elif c < 0x20 or c == 0x3C or c == 0x3E or c == 0x26:
			if p + 6 > e:
				break
			dst[p] = 0x5C
			dst[p + 1] = 0x75
			dst[p + 2] = 0x30
			dst[p + 3] = 0x30
			h = c >> 4
			dst[p + 4] = 0x30 + h
			h = c & 15
			if h < 10:
				dst[p + 5] = 0x30 + h
			else:
				dst[p + 5] = 0x57 + h
			p += 6
			i += 1
			nch -= 1
			continue
		if o:
			if p + 2 > e:
				break
			dst[p] = 0x5C
			dst[p + 1] = o
			p += 2
		else:
			if p >= e:
				break
			dst[p] = c
			p += 1
		i += 1
		nch -= 1
	st[0] = i
	st[1] = nch
	st[2] = p
	return nch


@micropython.viper
def copy(dst: ptr8, doff: int, src: ptr8, soff: int, n: int):
	i = 0
	while i < n:
		dst[doff + i] = src[soff + i]
		i += 1


@micropython.viper
def itoa(v: int, dst: ptr8) -> int:
	# decimal digits of v (|v| < 10**9) into dst; returns their count
	k = 0
	if v < 0:
		dst[0] = 0x2D
		k = 1
		v = 0 - v
	t = v
	n = 1
	while t >= 10:
		t = t // 10
		n += 1
	end = k + n
	j = end
	while j > k:
		j -= 1
		dst[j] = 0x30 + v % 10
		v = v // 10
	return end
"""
