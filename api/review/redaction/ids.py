"""Identity documents: national id and tax numbers of many countries, passports, dates of birth.

National numbers are found in two steps: a regular expression per written shape finds
candidates, then python-stdnum's validator for that country's scheme (check digits, embedded
birth date, allowed prefixes) decides. A maintained library of validators, rather than our own
check-digit code, because there are dozens of schemes and each has its quirks (Verhoeff for
Aadhaar, mod 11 with two digits for CPF, mod 97 for the French NIR, omocodia letters in the
Italian codice fiscale). The UK National Insurance number has no check digit, and stdnum has no
module for it: its published prefix rules are checked here.

A shape whose check is weak (a bare 9-digit run passes the Dutch BSN's 11-test one time in 11)
counts only after an id word in some language ("BSN", "PESEL", "personnummer", "身份证",
"주민등록번호"...). After such a word, any number-like token is taken even when no scheme
validates it (a Nigerian NIN has no check digit at all): the word says what it is.

Passports have no checksum outside the machine-readable zone, so a passport number is a token
of 6 to 9 letters and digits (at least one digit) after a passport word in one of many
languages. A date of birth is a date (numeric, with a month word in any language, or CJK) after
a birth word: dates on their own are history, not identity.

>>> from api.review.redaction.spans import resolve
>>> text = "CPF 123.456.789-09, NINO AB 12 34 56 C, Aadhaar 2341 2341 2346"
>>> [(e.type, e.value) for e in resolve([*find_ids(text)])]
[('NATIONAL_ID', '123.456.789-09'), ('NATIONAL_ID', 'AB 12 34 56 C'), ('NATIONAL_ID', '2341 2341 2346')]
>>> [(e.type, e.value) for e in resolve([*find_ids("Reisepassnummer: C01X00T47, geboren am 12. März 1985")])]
[('PASSPORT', 'C01X00T47'), ('DATE_OF_BIRTH', '12. März 1985')]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from stdnum.ar import cuit
from stdnum.be import nn as be_nn
from stdnum.br import cnpj, cpf
from stdnum.ca import sin
from stdnum.ch import ssn as ch_ssn
from stdnum.cl import rut
from stdnum.cn import ric
from stdnum.de import idnr
from stdnum.dk import cpr
from stdnum.es import dni, nie
from stdnum.fi import hetu
from stdnum.fr import nir
from stdnum.gr import amka
from stdnum.ie import pps
from stdnum.il import idnr as il_idnr
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale
from stdnum.jp import in_ as jp_mynumber
from stdnum.kr import rrn
from stdnum.mx import curp, rfc
from stdnum.nl import bsn
from stdnum.no import fodselsnummer
from stdnum.pl import pesel
from stdnum.ro import cnp
from stdnum.ru import inn
from stdnum.se import personnummer
from stdnum.tr import tckimlik
from stdnum.us import ein, itin, ssn
from stdnum.za import idnr as za_idnr

from api.review.redaction.spans import HAS_DIGIT, Entity

__all__ = ["find_ids", "nino_ok"]

# Bank account numbers outside IBANs (US/UK/Indian/Australian and domestic European forms),
# after an account word: "account number", "sort code", "routing number", "Kontonummer", ...
_ACCOUNT_WORDS_SPACED = (
    r"(?:bank\s+)?account(?:\s+(?:number|no\.?|#))?|\bacct\b|routing\s+(?:number|no)|\baba\b|sort\s+code|\bbsb\b"
    r"|\bifsc\b|kontonummer|konto\b|bankleitzahl|\bblz\b|num[ée]ro\s+de\s+compte|\brib\b|n[úu]mero\s+de\s+cuenta"
    r"|\bclabe\b|\bcbu\b|conta\s+corrente|\bag[êe]ncia\b|numero\s+di\s+conto|rekeningnummer|numer\s+konta"
    r"|номер\s+сч[её]та|расч[её]тный\s+сч[её]т|hesap\s+no|nomor\s+rekening"
)

Check = Callable[[str], bool]

# Words that say an identity number follows, in the languages and scripts of the countries
# whose schemes are below (and a few more). Matched case-insensitively, anywhere before.
_ID_WORDS = (
    r"\bssn\b|social\s+security(?:\s+(?:number|no\.?|#))?|national\s+insurance(?:\s+(?:number|no\.?))?|\bN\.?I\.?\s+(?:number|no)"
    r"|nino|aadhaa?r|आधार|uidai|\bcpf\b|\bcnpj\b|\bsin\b|social\s+insurance|\bdni\b|\bnie\b|\bnif\b|\bnuss?\b"
    r"|codice\s+fiscale|\bc\.?f\.?(?=\s*[:：])|steuer-?id|steuer(?:liche)?\s*identifikationsnummer|steuernummer|\bidnr"
    r"|\bbsn\b|burgerservicenummer|sofinummer|\bpesel\b|\bnir\b|s[ée]curit[ée]\s+sociale|num[ée]ro\s+de\s+s[ée]cu"
    r"|personnummer|personnr|\bcpr(?:-?nummer)?\b|f[øo]dselsnummer|henkil[öo]tunnus|\bhetu\b|\bcurp\b|\brfc\b|\brut\b"
    r"|\bcuit\b|\bcuil\b|주민등록번호|주민번호|\bmy\s*number"
    r"|kimlik|\bcnp\b|\bpps\b|\bamka\b|αμκα|\btfn\b|tax\s+file\s+number|tax\s*(?:id|number|identification)|\btin\b"
    r"|\bitin\b|\bnin\b|\bcnic\b|\bnric\b|\bkra\s+pin|\bpan\b|(?<![^\W\d_])инн(?![^\W\d_])|снилс|ідентифікаційний|\bahv\b|\bavs\b"
    r"|identity\s+(?:card\s+)?(?:number|no)|\bid\b|national\s+id|ausweisnummer"
    r"|personalausweis|identit[àa]|carta\s+d['’]identit|n[úu]mero\s+de\s+identifica|c[ée]dula|documento\s+de\s+identidad"
    r"|carte\s+d['’]identit[ée]|num[ée]ro\s+d['’]identit|identiteitskaart|dowód|número\s+de\s+documento|\brg\b"
    r"|driver['’]?s?\s+licen[cs]e|driving\s+licen[cs]e|f[üu]hrerschein|permis\s+de\s+conduire|licencia\s+de\s+conducir"
    r"|carteira\s+de\s+motorista|\bcnh\b|patente\s+di\s+guida|rijbewijs|prawo\s+jazdy|\bnhs\b|\bmrn\b"
    r"|medical\s+record|health\s+(?:card|insurance)\s+(?:number|no)|krankenversicherungsnummer|\bimei\b"
    r"|henkilökortti|номер\s+паспорта|удостоверени|رقم\s*(?:الهوية|الهويه|قومي)|الرقم\s+القومي|מספר\s+זהות|ת\.?ז"
    r"|पहचान|पैन|\bnik\b|nomor\s+induk|căn\s+cước|cmnd|cccd"
)


def _words(spaced: str, glued: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Two patterns: words of spaced scripts, tried only where a word starts (a big
    alternation tried at every character was most of the time on long texts), and words of
    scripts written without spaces (Chinese, Japanese, Thai), tried anywhere in non-ASCII text."""
    return re.compile(rf"(?i)(?<![^\W\d_])(?=[^\W\d_])(?:{spaced})"), re.compile(glued)


_ID_CONTEXT = _words(
    _ID_WORDS, r"身份证|身分證|公民身份号码|住民登録番号|マイナンバー|個人番号|เลขประจำตัวประชาชน"
)
_PASSPORT_WORDS = _words(
    r"passport|passeport|reisepass|\bpass(?:-?nr\.?|nummer|\s+nr\.?)|pasaporte|passaporto|passaporte|paspoort"
    r"|pass(?:et)?nummer|passin\s+numero|paszport|cestovní\s+pas|útlevél|pașaport|pasaport|διαβατήρι"
    r"|паспорт|여권|पासपोर्ट|جواز\s*(?:ال)?سفر|דרכון|hộ\s+chiếu",
    r"护照|護照|パスポート|旅券|หนังสือเดินทาง",
)
_ACCOUNT_WORDS = _words(_ACCOUNT_WORDS_SPACED, r"账号|帳號|口座番号|계좌번호")
_BIRTH_WORDS = _words(
    r"\bborn\b|birth(?:\s*day|\s*date)?|\bd\.?o\.?b\b|née?\s+le|date\s+de\s+naissance|naissance|geboren|geburtsdatum"
    r"|geb\.|fecha\s+de\s+nacimiento|naci(?:d[oa]|ó)|nacimiento|data\s+di\s+nascita|nat[oa]\s+il|nascita"
    r"|data\s+de\s+nascimento|nascid[oa]|nascimento|geboortedatum|geboren\s+op|f[öo]dd|födelsedatum|fødselsdato|født"
    r"|syntymäaika|syntynyt|urodzon[ya]|data\s+urodzenia|narozen[ýa]|datum\s+narození|született|doğum|doğdu"
    r"|дата\s+рождения|родил(?:ся|ась)|день\s+рождения|народжен|народився|народилася|γεννήθηκε|ημερομηνία\s+γέννησης"
    r"|생년월일|생일|태어났|जन्म|تاريخ\s+الميلاد|ولد(?:ت)?|مواليد|תאריך\s+לידה|נולד"
    r"|ngày\s+sinh|sinh\s+ngày|lahir|tanggal\s+lahir|kuzaliwa",
    r"出生|生日|生年月日|誕生日|เกิด",
)

# --- shapes of national numbers ----------------------------------------------------------------

_D = r"(?<![\w.,/+-])"  # not inside a longer token, a decimal or a fraction
_E = r"(?![\w]|[.,/-]\d)"
# Digits with single separators between them: most national numbers as people write them.
_DIGIT_RUN = re.compile(rf"{_D}\d(?:[ .\-/]?\d){{7,17}}(?:[ -]?[Xx])?{_E}")


def _nino_ok(value: str) -> bool:
    return nino_ok(value)


def nino_ok(value: str) -> bool:
    """UK National Insurance number rules (HMRC): two prefix letters (D F I Q U V never, O never
    second, BG GB KN NK NT TN ZZ never), six digits, suffix A-D.

    >>> nino_ok("AB123456C"), nino_ok("GB123456A"), nino_ok("QQ123456C")
    (True, False, False)
    """
    v = re.sub(r"[\s-]", "", value).upper()
    if not re.fullmatch(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", v):
        return False
    return v[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


# (shape, check, needs an id word before) for shapes that are not a plain digit run. The
# letters in them make random hits rare, so the check alone decides.
_SHAPED: tuple[tuple[re.Pattern[str], Check, bool], ...] = (
    (re.compile(r"(?i)(?<![\w])[A-Z]{2}[ -]?\d{2}[ -]?\d{2}[ -]?\d{2}[ -]?[A-D](?![\w])"), _nino_ok, False),
    (re.compile(r"(?<![\w])\d{8}[ -]?[A-Z](?![\w])"), dni.is_valid, False),
    (re.compile(r"(?<![\w])[XYZ][ -]?\d{7}[ -]?[A-Z](?![\w])"), nie.is_valid, False),
    (
        re.compile(
            r"(?i)(?<![\w])[A-Z]{6}[0-9LMNP-V]{2}[A-EHLMPR-T][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z](?![\w])"
        ),
        codicefiscale.is_valid,
        False,
    ),
    (re.compile(r"(?i)(?<![\w])[A-Z]{4}\d{6}[HMX][A-Z]{5}[0-9A-Z]\d(?![\w])"), curp.is_valid, False),
    (re.compile(r"(?<![\w])[A-ZÑ&]{4}\d{6}[A-Z0-9]{3}(?![\w])"), rfc.is_valid, True),
    (re.compile(r"(?<![\w])[A-Z]{3}[PCHFATBLJG][A-Z]\d{4}[A-Z](?![\w])"), pan.is_valid, False),
    (re.compile(r"(?<![\w])\d{6}[-+A-FU-Y]\d{3}[0-9A-Y](?![\w])"), hetu.is_valid, False),
    (re.compile(r"(?<![\w])\d{7}[A-W][ABHWTX]?(?![\w])"), pps.is_valid, False),
    # Glued to Chinese text as often as not ("身份证号码是1101..."): only digits may not touch it.
    (re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"), lambda v: _ric_ok(v), False),
    (re.compile(r"(?<![\w.])\d{1,2}\.\d{3}\.\d{3}-[\dkK](?![\w])"), rut.is_valid, False),
    (re.compile(r"(?<![\w-])\d{5}-\d{7}-\d(?![\w-])"), lambda v: True, False),  # Pakistan CNIC: no check
)

# Digit-run schemes by number of digits: (check, taken without an id word when written in
# this layout). A layout is the run's separators as a pattern over the digits ("3.3.3-2").
_RUN_SCHEMES: dict[int, tuple[tuple[Check, tuple[str, ...]], ...]] = {
    9: (
        (ssn.is_valid, ("3-2-4",)),
        (ein.is_valid, ("2-7",)),
        (itin.is_valid, ("3-2-4",)),
        (sin.is_valid, ("3-3-3", "3 3 3")),
        (bsn.is_valid, ("4.2.3",)),
        (il_idnr.is_valid, ()),
    ),
    10: (
        (personnummer.is_valid, ("6-4",)),
        (cpr.is_valid, ()),
        (inn.is_valid, ()),
    ),
    11: (
        (cpf.is_valid, ("3.3.3-2", "11")),
        (tckimlik.is_valid, ("11",)),
        (cuit.is_valid, ("2-8-1",)),
        (be_nn.is_valid, ("2.2.2-3.2",)),
        (idnr.is_valid, ("2 3 3 3",)),
        (pesel.is_valid, ()),
        (fodselsnummer.is_valid, ("6 5",)),
        (amka.is_valid, ()),
    ),
    12: (
        (aadhaar.is_valid, ("4 4 4", "4-4-4")),
        (personnummer.is_valid, ("8-4",)),
        (jp_mynumber.is_valid, ()),
        (inn.is_valid, ()),
    ),
    13: (
        (rrn.is_valid, ("6-7",)),
        (ch_ssn.is_valid, ("3.4.4.2",)),
        (cnp.is_valid, ()),
        (za_idnr.is_valid, ("6 4 2 1",)),
    ),
    14: ((cnpj.is_valid, ("2.3.3/4-2",)),),
    15: ((nir.is_valid, ("15", "1 2 2 2 3 3 2")),),
}
# After an id word, a token like these is taken whatever its scheme: a number (with
# separators) or letters and digits mixed, 6 to 20 characters.
_AFTER_WORD = re.compile(
    # Up to three filler words ("number", "is", "号码", "번호는"), each ending before a non-alnum
    # character so a letter prefix of the value itself ("AB1234567") is never eaten as one.
    # CJK words run into the number without a space ("号码是4403...").
    r"(?:[\s.:：#№=\-–—(\"'«“„]*(?:[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]{1,8}|(?:[^\W\d_]{3,16}|n\.?[º°o]?|no|nr|is|es|é|è|ist|är|er)(?![A-Za-z0-9])\.?)){0,3}"
    r"[\s:：#№=\-–—(\"'«“„]*"
    # The value: one token, then more tokens after a separator only while they hold a digit
    # ("AB 1234567", "123-45-6789"), never the words of the sentence that goes on.
    r"(?P<value>(?=[A-Za-z0-9 .\-/]{0,20}\d)[A-Za-z0-9]+"
    r"(?:[ .\-/](?=[A-Za-z]{0,3}\d)[A-Za-z0-9]+){0,5})(?![\w])"
)
_WORD_WINDOW = 48  # how far back an id word may be


def _layout(value: str) -> str:
    """'123.456.789-09' -> '3.3.3-2'; '12345678909' -> '11'."""
    parts = re.split(r"([ .\-/])", value)
    return "".join(p if i % 2 else str(len(p)) for i, p in enumerate(parts))


def _has_word(text: str, start: int) -> bool:
    spaced, glued = _ID_CONTEXT
    lo = max(0, start - _WORD_WINDOW)
    return bool(spaced.search(text, lo, start) or (not text.isascii() and glued.search(text, lo, start)))


def _word_matches(text: str, words: tuple[re.Pattern[str], re.Pattern[str]]) -> Iterator[re.Match[str]]:
    spaced, glued = words
    yield from spaced.finditer(text)
    if not text.isascii():
        yield from glued.finditer(text)


def find_ids(text: str) -> Iterator[Entity]:
    """National id numbers, passports and dates of birth in ``text``."""
    if HAS_DIGIT.search(text) is None:
        return
    yield from _national(text)
    yield from _after_words(text, _ID_CONTEXT, "NATIONAL_ID")
    yield from _after_words(text, _PASSPORT_WORDS, "PASSPORT")
    yield from _after_words(text, _ACCOUNT_WORDS, "BANK_ACCOUNT")
    yield from _dates_of_birth(text)


# Every national shape holds three digits in a row, two pairs split by a space or hyphen
# (a NINO), or a digit and three after a dot (a RUT): a text without any is skipped at once.
_NATIONAL_HINT = re.compile(r"\d{3}|\d{2}[ -]\d{2}|\d\.\d{3}")


def _national(text: str) -> Iterator[Entity]:
    if not _NATIONAL_HINT.search(text):
        return
    for pattern, check, needs_word in _SHAPED:
        for m in pattern.finditer(text):
            value = m.group()
            if _safe(check, value) and (not needs_word or _has_word(text, m.start())):
                yield _entity(m.start(), m.end(), value)
    for m in _DIGIT_RUN.finditer(text):
        value = m.group()
        compact = re.sub(r"[ .\-/]", "", value)
        schemes = _RUN_SCHEMES.get(sum(ch.isdigit() for ch in compact))
        if not schemes:
            continue
        layout = _layout(value)
        word: bool | None = None
        for check, layouts in schemes:
            if not _safe(check, compact):
                continue
            if layout not in layouts:
                if word is None:
                    word = _has_word(text, m.start())
                if not word:
                    continue
            yield _entity(m.start(), m.end(), value)
            break


def _after_words(text: str, words: tuple[re.Pattern[str], re.Pattern[str]], kind: str) -> Iterator[Entity]:
    for w in _word_matches(text, words):
        m = _AFTER_WORD.match(text, w.end())
        if m is None or m.start("value") - w.end() > 24:
            continue
        value = m["value"].rstrip(" .-/")
        compact = re.sub(r"[ .\-/]", "", value)
        first = re.split(r"[ .\-/]", value, maxsplit=1)[0]
        # 6 to 20 characters; an id number mostly digits (a German passport number may be
        # mostly letters: "C01X00T47"); a leading group of letters only is a short series
        # prefix ("AB 1234567"), never a word ("open until 5").
        digits = sum(ch.isdigit() for ch in compact)
        if not 6 <= len(compact) <= 20 or (
            kind == "NATIONAL_ID" and (digits < 4 or digits * 2 < len(compact))
        ):
            continue
        if not any(ch.isdigit() for ch in first) and len(first) > 3:
            continue
        start = m.start("value")
        key = re.sub(r"[ .\-/]", "", value).upper()
        yield Entity(start, start + len(value), kind, value, f"{kind}:{key}")


# --- dates of birth ---------------------------------------------------------------------------

# A month word in any script: letters and the combining marks of Indic scripts alike.
_MONTH_WORD = r"[^\W\d_][^\s\d,.;:()]{1,14}\.?"
_DATE = re.compile(
    r"(?<![\w/.-])(?:"
    r"\d{1,2}[./\-]\s?\d{1,2}[./\-]\s?(?:\d{4}|\d{2})"  # 12/03/1985, 12.03.85, 3-12-1985
    r"|\d{4}[./\-]\d{1,2}[./\-]\d{1,2}"  # 1985-03-12
    rf"|\d{{1,2}}(?:\.|er|st|nd|rd|th|º)?\s+(?:de\s+|of\s+)?{_MONTH_WORD}\s+(?:de\s+|del\s+)?(?:\d{{4}}|'\d{{2}})"
    rf"|{_MONTH_WORD}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"  # March 12, 1985
    r"|\d{1,2}\s+tháng\s+\d{1,2}(?:\s+năm)?\s+\d{4}"  # Vietnamese
    r"|\d{4}\s*[年년]\s*\d{1,2}\s*[月월]\s*\d{1,2}\s*[日일]?"  # 1985年3月12日, 1985년 3월 12일
    r"|\d{4}\s?(?:г\.?|р\.?)?(?=\s|$|[.,;)])"  # a year on its own, only in the short window below
    r")(?![\w]|[./-]\d)"
)
_DOB_WINDOW = 40


def _dates_of_birth(text: str) -> Iterator[Entity]:
    for w in _word_matches(text, _BIRTH_WORDS):
        window_end = min(len(text), w.end() + _DOB_WINDOW)
        for m in _DATE.finditer(text, w.end(), window_end):
            value = m.group().rstrip()
            if re.fullmatch(r"\d{4}\s?(?:г\.?|р\.?)?", value):
                # A bare year is a date of birth only right after the word ("born 1985").
                if m.start() - w.end() > 6:
                    continue
            start = m.start()
            key = " ".join(value.split()).casefold()
            yield Entity(start, start + len(value), "DATE_OF_BIRTH", value, f"DATE_OF_BIRTH:{key}")
            break


# --- helpers -----------------------------------------------------------------------------------


def _ric_ok(value: str) -> bool:
    """A Chinese resident id: check digit and birth date. Not stdnum's region lookup: its table
    rejects real codes of districts renamed since (a leak costs more than a false positive)."""
    number = value.upper()
    return ric.calc_check_digit(number) == number[-1] and _safe(ric.get_birth_date, number)


def _safe(check: Callable[[str], object], value: str) -> bool:
    try:
        return bool(check(value))
    except Exception:  # a validator that trips on odd input says "not this scheme"
        return False


def _entity(start: int, end: int, value: str) -> Entity:
    key = re.sub(r"[ .\-/]", "", value).upper()
    return Entity(start, end, "NATIONAL_ID", value, f"NATIONAL_ID:{key}")
