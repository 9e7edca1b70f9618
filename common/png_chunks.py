"""Read and add the metadata chunks of a PNG (ICC profile, EXIF, XMP, text).

OpenCV encodes every PNG the CLI writes (Pillow cannot hold 16-bit RGB pixels) but writes no
metadata, so the chunks are inserted into its bytes: iCCP and eXIf right after IHDR (both must
come before IDAT), text chunks too. Reading them here (rather than with Pillow, which decodes the
whole image to find chunks after IDAT) costs no pixel decoding. Chunk layout and CRCs follow the
PNG specification (3rd ed.).
"""
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = "XML:com.adobe.xmp"
# Chunks that describe the colour space: an embedded profile replaces them.
COLOUR_CHUNKS = (b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP")
# Inflated sizes allowed for the metadata read (a few hundred KB of zlib can inflate to gigabytes):
# per compressed chunk, and for all metadata chunks of a file together; past them a chunk is dropped.
# ICC profiles and XMP packets are rarely over 1 MB.
MAX_CHUNK_BYTES = 8 << 20
MAX_TOTAL_BYTES = 32 << 20


class PNGError(ValueError):
    pass


def chunk(kind: bytes, data: bytes) -> bytes:
    """One chunk: length, type, data, CRC-32 of type + data."""
    if len(kind) != 4:
        raise PNGError(f"chunk type must be 4 bytes, not {kind!r}")
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _chunks(png: bytes):
    """(type, data start, data end) of each chunk, without copying; checks the layout, not CRCs."""
    if not png.startswith(SIGNATURE):
        raise PNGError("not a PNG (bad signature)")
    pos, first = len(SIGNATURE), True
    while pos < len(png):
        if pos + 12 > len(png):
            raise PNGError("truncated chunk header")
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = bytes(png[pos + 4 : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(png):
            raise PNGError(f"truncated {kind!r} chunk")
        if first and kind != b"IHDR":
            raise PNGError("no IHDR at the start")
        first = False
        yield kind, pos + 8, end
        pos = end + 4
        if kind == b"IEND":
            return
    raise PNGError("no IEND at the end")


def _data(png: bytes, kind: bytes, start: int, end: int) -> bytes:
    data = bytes(png[start:end])
    (crc,) = struct.unpack(">I", png[end : end + 4])
    if crc != zlib.crc32(kind + data):
        raise PNGError(f"bad CRC in {kind!r} chunk")
    return data


def split(png: bytes) -> list[tuple[bytes, bytes]]:
    """[(type, data), ...] of a PNG file; checks the signature, lengths and CRCs."""
    return [(kind, _data(png, kind, start, end)) for kind, start, end in _chunks(png)]


def join(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return SIGNATURE + b"".join(chunk(kind, data) for kind, data in chunks)


def _latin1_keyword(key: str) -> bytes:
    word = key.encode("latin-1", "replace")[:79]
    if not word:
        raise PNGError("empty text keyword")
    return word


def iccp(profile: bytes, name: str = "ICC Profile") -> tuple[bytes, bytes]:
    return b"iCCP", _latin1_keyword(name) + b"\0\0" + zlib.compress(profile)


def itxt(key: str, text: str) -> tuple[bytes, bytes]:
    """International text, UTF-8, uncompressed (XMP must not be compressed for some readers)."""
    return b"iTXt", _latin1_keyword(key) + b"\0\0\0\0\0" + text.encode("utf-8")


def text_chunk(key: str, text: str) -> tuple[bytes, bytes]:
    """tEXt when the text is Latin-1, else iTXt."""
    try:
        return b"tEXt", _latin1_keyword(key) + b"\0" + text.encode("latin-1")
    except UnicodeEncodeError:
        return itxt(key, text)


def add_metadata(png: bytes, icc: bytes | None = None, exif: bytes | None = None,
                 xmp: bytes | None = None, text: dict[str, str] | None = None) -> bytes:
    """The PNG with these chunks added after IHDR (an ICC profile replaces sRGB/gAMA/cHRM).

    Only the chunks before the image data are rebuilt; IDAT onwards is copied as it is.
    """
    drop = set(COLOUR_CHUNKS) if icc else set()
    if exif:
        drop.add(b"eXIf")
    head, rest = [], len(png)
    for kind, start, end in _chunks(png):
        if kind == b"IDAT":
            rest = start - 8
            break
        if kind not in drop:
            head.append((kind, _data(png, kind, start, end)))
    extra = []
    if icc:
        extra.append(iccp(icc))
    if exif:
        extra.append((b"eXIf", exif))
    if xmp:
        extra.append(itxt(XMP_KEYWORD, xmp.decode("utf-8", "replace")))
    for key, value in (text or {}).items():
        if key != XMP_KEYWORD:
            extra.append(text_chunk(key, value))
    chunks = [head[0], *extra, *head[1:]]
    return SIGNATURE + b"".join(chunk(kind, data) for kind, data in chunks) + png[rest:]


class TooLarge(PNGError):
    """A chunk over the size limits: it is dropped, the rest of the file is read."""


def _decompress(data: bytes, limit: int = MAX_CHUNK_BYTES) -> bytes:
    """zlib data inflated to at most `limit` bytes; TooLarge past it (never inflating more)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise PNGError(f"bad compressed chunk ({exc})") from None
    if len(out) > limit:
        raise TooLarge(f"inflates to more than {limit / 2**20:g} MiB")
    return out


def _text(kind: bytes, data: bytes, limit: int = MAX_CHUNK_BYTES) -> tuple[str, str]:
    key, _, rest = data.partition(b"\0")
    if kind == b"tEXt":
        return key.decode("latin-1"), rest.decode("latin-1")
    if kind == b"zTXt":  # method byte, then zlib
        return key.decode("latin-1"), _decompress(rest[1:], limit).decode("latin-1")
    compressed, rest = rest[:1] == b"\1", rest[2:]  # iTXt: flag, method, language, translated key
    _language, _, rest = rest.partition(b"\0")
    _translated, _, rest = rest.partition(b"\0")
    return key.decode("latin-1"), (_decompress(rest, limit) if compressed else rest).decode("utf-8", "replace")


def read_metadata(png: bytes, max_chunk: int = MAX_CHUNK_BYTES, max_total: int = MAX_TOTAL_BYTES) -> dict:
    """{"icc": bytes|None, "exif": bytes|None (no "Exif\\0\\0" header), "xmp": bytes|None,
    "text": {key: value}, "dropped": [one-line reasons], "dropped_at": [their chunks' offsets]} of a
    PNG file's bytes; raises PNGError if
    it is malformed.

    A chunk that is (or inflates to) more than `max_chunk` bytes, or would take the metadata past
    `max_total` bytes in all, is dropped (and said so in "dropped"), not inflated further."""
    found = {"icc": None, "exif": None, "xmp": None, "text": {}, "dropped": [], "dropped_at": []}
    total = 0
    for kind, start, end in _chunks(png):
        if kind not in (b"iCCP", b"eXIf", b"tEXt", b"zTXt", b"iTXt"):
            continue  # the image data is neither copied nor checked here
        name = kind.decode("latin-1")
        limit = min(max_chunk, max_total - total)
        if end - start > limit:
            found["dropped"].append(f"{name} chunk of {end - start:,} bytes dropped (over the metadata limit)")
            found["dropped_at"].append(start - 8)
            continue
        data = _data(png, kind, start, end)
        try:
            if kind == b"iCCP":
                _name, _, rest = data.partition(b"\0")
                found["icc"] = value = _decompress(rest[1:], limit)
            elif kind == b"eXIf":
                found["exif"] = value = data
            else:
                key, value = _text(kind, data, limit)
                if key == XMP_KEYWORD:
                    found["xmp"] = value.encode("utf-8")
                else:
                    found["text"][key] = value
        except TooLarge as exc:
            which = f"{name} chunk" if kind in (b"iCCP", b"eXIf") else f"{name} chunk {_keyword(data)!r}"
            found["dropped"].append(f"{which} dropped: {exc} (metadata limit {max_chunk / 2**20:g} MiB a "
                                    f"chunk, {max_total / 2**20:g} MiB in all)")
            found["dropped_at"].append(start - 8)
            continue
        total += len(value)
    return found


def remove_chunks(png: bytes, offsets) -> bytes:
    """The PNG without the chunks that start at these offsets (as read_metadata's "dropped_at"), so
    that the decoder does not inflate them again (libpng would, up to its own limit, with a warning)."""
    keep, pos = [], 0
    for offset in sorted(offsets):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        keep.append(png[pos:offset])
        pos = offset + 12 + length
    return b"".join(keep) + png[pos:]


def _keyword(data: bytes) -> str:
    return data.partition(b"\0")[0][:79].decode("latin-1")
