"""Which character encoding a text export is in: told, marked, UTF-8, or guessed — and said so.

A wrong guess does not fail loudly: it turns ``Клиент-1`` into ``РљР»РёРµРЅС‚-1`` or ``Łódź``
into ``£ódŸ``, and a client id read that way is a new, phantom client whose labels attach to
nobody.  So the rules are strict and every guess is reported:

1. An encoding the user names (``churnguard ingest --encoding NAME``) wins.  The file is
   decoded strictly with it; bytes that encoding cannot decode are refused with their lines.
2. A byte-order mark (UTF-8, UTF-16, UTF-32) names the encoding.
3. Strict UTF-8.
4. Bytes that are mostly UTF-8 — at least as many valid multi-byte characters as invalid
   bytes — are a UTF-8 file with damaged bytes (a bad copy, two exports glued together).
   They are refused, naming the lines: re-reading the whole file in a one-byte charset
   would garble every correct letter to save a few broken ones.
5. Anything else is a legacy encoding: charset-normalizer ranks the candidates a CRM
   export plausibly uses, the chosen one must decode the *whole* file, and the result
   carries a note that the encoding was guessed (shown in the ingest report and the
   bot's reply).  Nothing is ever silently re-read in another charset.

Why not charset-normalizer's own first choice: on the short, name-heavy text of a CRM
export it often ties encodings that share the bytes it saw (French in CP1250 and CP1252
both score "no chaos"), and it labels a group of identical decodings with its first member.
Ties are therefore broken by a check of our own — letters that cannot sit together in
one word (``Mьller``, ``MŘller``, ``M³ller``) — and then by how common the encoding is.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from storage.errors import IngestRejected, UserError

# Legacy encodings in the order a tie is broken: the Windows code pages most CRM exports
# use first.  Each comes with the words the report uses for it.
LEGACY: dict[str, str] = {
    "cp1252": "Western European, Windows-1252",
    "cp1251": "Cyrillic, Windows-1251",
    "cp1250": "Central European, Windows-1250",
    "iso8859_15": "Western European, ISO-8859-15",
    "iso8859_2": "Central European, ISO-8859-2",
    "koi8_r": "Russian, KOI8-R",
    "koi8_u": "Ukrainian, KOI8-U",
    "cp866": "Cyrillic, DOS-866",
    "cp1253": "Greek, Windows-1253",
    "cp1254": "Turkish, Windows-1254",
    "cp1257": "Baltic, Windows-1257",
    "cp1255": "Hebrew, Windows-1255",
    "cp1256": "Arabic, Windows-1256",
    "cp1258": "Vietnamese, Windows-1258",
    "cp874": "Thai, Windows-874",
    "mac_roman": "Western European, Mac OS Roman",
    "cp932": "Japanese, Shift JIS",
    "euc_jp": "Japanese, EUC-JP",
    "gb18030": "Chinese, GB18030",
    "big5": "Chinese, Big5",
    "cp949": "Korean, CP949",
}
SUGGESTED = "utf-8, cp1252, cp1251, cp1250 or latin-1"
_SAMPLE_BYTES = 512 * 1024  # charset-normalizer reads at most this much: the lines with non-ASCII bytes
_SHOWN_LINES = 5
_COUNT_CHUNK = 1 << 20
_NON_ASCII_LINE = re.compile(rb"[^\n]*[\x80-\xff][^\n]*\n?")
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: FF FE 00 00 also starts with the UTF-16 LE mark
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Decoded:
    """The text, the codec that produced it, and a note when that codec was a guess."""

    text: str
    encoding: str
    note: str | None = None

    @property
    def guessed(self) -> bool:
        return self.note is not None


def check_encoding(name: str | None) -> str | None:
    """The Python codec name for an encoding a user typed (``CP1251``, ``windows-1250``,
    ``latin1``); a clear ``UserError`` for a name no codec has.  None stays None."""
    if name is None or not name.strip():
        return None
    try:
        info = codecs.lookup(name.strip())
    except LookupError:
        raise UserError(f"unknown encoding {name.strip()!r}; use a name such as {SUGGESTED}",
                        problem="bad_encoding_name", encoding=name) from None
    try:
        "".encode(info.name)
        b"".decode(info.name)
    except (LookupError, TypeError):  # codecs such as rot13 or base64 are not text encodings
        raise UserError(f"{name.strip()!r} is not a text encoding; use a name such as {SUGGESTED}",
                        problem="bad_encoding_name", encoding=name) from None
    return info.name


def decode(data: bytes, source_name: str, encoding: str | None = None) -> Decoded:
    """Decode a text export by the rules in the module docstring; ``IngestRejected`` when
    it cannot be done without guessing wrong."""
    if encoding is not None:
        return _decode_as(data, source_name, check_encoding(encoding) or "utf-8")
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _strict(data, source_name, codec, why="starts with a byte-order mark for")
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    valid, broken = utf8_counts(data)
    if valid >= broken:
        raise _damaged_utf8(data.decode("utf-8", errors="replace"), source_name, broken)
    return _guess(data, source_name)


def utf8_counts(data: bytes) -> tuple[int, int]:
    """(valid non-ASCII characters, invalid byte sequences) of ``data`` read as UTF-8, a
    megabyte at a time, so a large legacy-encoded file is never held as text twice."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    valid = broken = 0
    view = memoryview(data)
    for start in range(0, len(data), _COUNT_CHUNK):
        text = decoder.decode(view[start:start + _COUNT_CHUNK], final=start + _COUNT_CHUNK >= len(data))
        bad = text.count("\ufffd")
        broken += bad
        valid += len(text) - len(text.encode("ascii", errors="ignore")) - bad
    return valid, broken


def _decode_as(data: bytes, source_name: str, codec: str) -> Decoded:
    """The encoding the user named; its own byte-order mark is dropped, never read as text."""
    if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"
    decoded = _strict(data, source_name, codec, why="was read as the encoding you named,")
    text = decoded.text[1:] if decoded.text.startswith("\ufeff") else decoded.text
    return Decoded(text, codec)


def _strict(data: bytes, source_name: str, codec: str, *, why: str) -> Decoded:
    try:
        return Decoded(data.decode(codec), codec)
    except UnicodeDecodeError:
        lenient = data.decode(codec, errors="replace")
        lines = bad_lines(lenient)
        raise IngestRejected(
            f"{source_name} {why} {codec}, but {lenient.count(chr(0xFFFD))} byte(s) are not valid {codec}, on "
            f"{_where(lines)}. Check the encoding, or save the whole export in one encoding (UTF-8 is best) and "
            "send it again",
            problem="bad_encoding", encoding=codec, rows=[line for line, _ in lines], row_kind="file line",
            examples=[text for _, text in lines],
        ) from None


def _damaged_utf8(lenient: str, source_name: str, broken: int) -> IngestRejected:
    lines = bad_lines(lenient)
    return IngestRejected(
        f"{source_name} is UTF-8 text except for {broken} invalid byte(s), on {_where(lines)}. Nothing was read in "
        "another encoding, because that would garble every other non-English letter (and turn client ids into "
        "new, wrong ones). Fix or remove those lines, or export the file again as UTF-8, and send it again",
        problem="bad_encoding", encoding="utf-8", rows=[line for line, _ in lines], row_kind="file line",
        examples=[text for _, text in lines], bad_bytes=broken,
    )


def bad_lines(lenient: str, limit: int = _SHOWN_LINES) -> list[tuple[int, str]]:
    """(1-based file line, the line with "�" where a byte could not be decoded) of the first
    ``limit`` lines with such bytes, in text decoded with ``errors="replace"``."""
    found: list[tuple[int, str]] = []
    position, line, counted = lenient.find("\ufffd"), 1, 0
    while position != -1 and len(found) < limit:
        line += lenient.count("\n", counted, position)
        start = lenient.rfind("\n", 0, position) + 1
        end = lenient.find("\n", position)
        end = len(lenient) if end == -1 else end
        found.append((line, lenient[start:end].rstrip("\r")[:80]))
        counted = end
        position = lenient.find("\ufffd", end)
    return found


def _where(lines: list[tuple[int, str]]) -> str:
    if not lines:
        return "an unknown line"
    shown = ", ".join(f"{line} ({text!r})" for line, text in lines)
    more = f" (the first {len(lines)} such lines)" if len(lines) >= _SHOWN_LINES else ""
    return ("file line " if len(lines) == 1 else "file lines ") + shown + more


# ------------------------------------------------------------------------------------------
# Guessing a legacy encoding
# ------------------------------------------------------------------------------------------


def _sample(data: bytes) -> bytes:
    """What the detector reads: the whole file when small, else its lines with non-ASCII
    bytes (ASCII lines say nothing about the encoding), up to ``_SAMPLE_BYTES``."""
    if len(data) <= _SAMPLE_BYTES:
        return data
    parts: list[bytes] = []
    size = 0
    for match in _NON_ASCII_LINE.finditer(data):
        parts.append(match.group())
        size += len(parts[-1])
        if size >= _SAMPLE_BYTES:
            break
    return b"".join(parts)


def _guess(data: bytes, source_name: str) -> Decoded:
    from charset_normalizer import from_bytes

    sample = _sample(data)
    matches = from_bytes(sample, cp_isolation=list(LEGACY), preemptive_behaviour=False, steps=10,
                         chunk_size=1024)
    ranked = sorted(matches, key=lambda m: (oddities(str(m)), -round(alphabet_fit(str(m)), 2), round(m.chaos, 2),
                                            -round(m.coherence, 2), _priority(m.could_be_from_charset)))
    tried: list[str] = []
    for match in ranked:
        # Codecs that decode the sample alike are one match; take the most common one that
        # decodes the whole file.
        for codec in sorted((c for c in match.could_be_from_charset if c in LEGACY), key=_priority_one):
            if codec in tried:
                continue
            tried.append(codec)
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                continue
            return Decoded(text, codec, note=guess_note(codec))
    raise IngestRejected(
        f"{source_name} is not UTF-8, and no common encoding reads it as text"
        + (f" (tried {', '.join(tried)})" if tried else "")
        + ". Save the export as UTF-8 (\"CSV UTF-8\" in Excel) and send it again",
        problem="bad_encoding",
    )


def guess_note(codec: str) -> str:
    """The warning a guessed encoding puts in the ingest report."""
    return (f"not UTF-8: read as {codec} ({LEGACY.get(codec, codec)}), an encoding guessed from the text; if "
            "names or cities look wrong, save the export as UTF-8 and send it again")


def _priority_one(codec: str) -> int:
    order = list(LEGACY)
    return order.index(codec) if codec in order else len(order)


def _priority(codecs_: list[str]) -> int:
    return min((_priority_one(c) for c in codecs_), default=len(LEGACY))


# A word: letters, maybe joined by symbols or punctuation ("Jean-Pierre", "M³ller"), with the
# symbols right after it ("Gro▀", "m²").
_WORD = re.compile(r"[^\W\d_]+(?:[^\s\w,;\"']+[^\W\d_]+)*[^\s\w,;\"']*")
# Symbols that legitimately follow a word: "N°", "5 m²", "100€", "Brand®".
_NEUTRAL_AFTER = frozenset("°€£¥¢§©®™№ªº²³¹%‰")
# The letters beyond ASCII that one Latin-script language writes.  Text decoded in the right
# charset uses the letters of one language (or a few); decoded in a wrong one it mixes letters
# no language has together ("Dvoøák": the Danish ø in a Czech name).
LATIN_ALPHABETS: dict[str, str] = {
    "French": "àâæçéèêëîïôœùûüÿ",
    "German": "äöüß",
    "Spanish": "áéíñóúü",
    "Portuguese": "áâãàçéêíóôõú",
    "Italian": "àèéìíîòóùú",
    "Dutch": "áéëïóöü",
    "Danish and Norwegian": "åæøéó",
    "Swedish and Finnish": "åäöéšž",
    "Icelandic": "áðéíóúýþæö",
    "Catalan": "àçèéíïòóúü",
    "Polish": "ąćęłńóśźż",
    "Czech": "áčďéěíňóřšťúůýž",
    "Slovak": "áäčďéíĺľňóôŕšťúýž",
    "Hungarian": "áéíóöőúüű",
    "Romanian": "ăâîșțşţ",
    "Croatian and Slovenian": "čćđšž",
    "Turkish": "çğıİöşüâî",
    "Estonian": "äöõüšž",
    "Latvian": "āčēģīķļņšūž",
    "Lithuanian": "ąčęėįšųūž",
    "Albanian": "çë",
}
_SCRIPTS = ("CYRILLIC", "GREEK", "HEBREW", "ARABIC", "THAI", "CJK", "HIRAGANA", "KATAKANA", "HANGUL")


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def oddities(text: str) -> int:
    """How many words hold characters that do not sit together in any language's words:
    two scripts (``Mьller``), a capital that is not ASCII between letters next to a small one
    (``MŘller``, ``PÈcs``; ``Saint-Étienne`` is fine), a symbol inside a word (``M³ller``, ``v·ros``) or an unusual one
    right after it (``Gro▀``).  The mark of text decoded in the wrong charset."""
    odd = 0
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        categories = [unicodedata.category(ch) for ch in word]
        last = max(i for i, category in enumerate(categories) if category[0] in "LM")
        scripts: set[str] = set()
        bad = False
        for position, (ch, category) in enumerate(zip(word, categories, strict=True)):
            if category[0] == "L":
                scripts.add(_script(ch))
                if category == "Lu" and not ch.isascii() and position > 0 and categories[position - 1][0] == "L":
                    after = categories[position + 1] if position + 1 < len(word) else ""
                    bad |= "Ll" in (categories[position - 1], after)
            elif category[0] in "SNP" and not ch.isascii() and category not in ("Pd", "Pf", "Pe"):
                bad |= position < last or ch not in _NEUTRAL_AFTER
        if bad or len(scripts) > 1:
            odd += 1
    return odd


def alphabet_fit(text: str) -> float:
    """The largest share of the text's non-ASCII letters that one language writes (1.0:
    every such letter belongs to one alphabet); 0.0 for text without such letters."""
    counts: dict[str, int] = {}
    marks = 0  # combining accents: no alphabet above writes them apart from their letter
    for ch in text:
        if not ch.isascii():
            if ch.isalpha():
                counts[ch] = counts.get(ch, 0) + 1
            elif unicodedata.category(ch) == "Mn":
                marks += 1
    total = sum(counts.values()) + marks
    if not total:
        return 0.0
    best = 0
    for alphabet in LATIN_ALPHABETS.values():
        best = max(best, sum(n for ch, n in counts.items() if ch in alphabet or ch.lower() in alphabet))
    for script in _SCRIPTS:
        best = max(best, sum(n for ch, n in counts.items() if _script(ch) == script))
    return best / total


__all__ = ["LEGACY", "Decoded", "alphabet_fit", "bad_lines", "check_encoding", "decode", "guess_note", "oddities",
           "utf8_counts"]
