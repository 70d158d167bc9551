"""Person names in scripts without capital letters, and names announced in any language.

Capitalisation is what ``redaction.names`` keys on; Chinese, Japanese, Korean, Arabic, Hebrew,
Persian, the Indic scripts and Thai have none. Here, from Faker's name lists for those locales
(the same maintained lists, so nothing is downloaded and there is no model to run):

* Han / kana / Hangul, written without spaces: a listed surname followed by a listed given
  name ("王秀英", "佐藤 健一", "김민준"), or any short name before an honorific (先生, 女士,
  さん, 様, 씨, 님) when it starts with a listed surname;
* space-separated caseless scripts: a listed first name followed by a listed first or last
  name ("محمد أحمد", "राहुल शर्मा", "דוד כהן");
* in every script, the words after "my name is" in many languages ("je m'appelle", "меня
  зовут", "我叫", "제 이름은", "मेरा नाम", "اسمي", ...).

>>> from api.review.redaction.spans import resolve
>>> text = "我叫王秀英。佐藤健一さんと김민준 씨, राहुल शर्मा, محمد أحمد"
>>> [e.value for e in resolve([*find_world_names(text)])]
['王秀英', '佐藤健一', '김민준', 'राहुल शर्मा', 'محمد أحمد']
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from functools import lru_cache

from api.review.redaction.spans import Entity

__all__ = ["find_world_names"]

_CJK_LOCALES = ("zh_CN", "zh_TW", "ja_JP", "ko_KR")
_CASELESS_LOCALES = (
    "ar_AA", "ar_DZ", "ar_PS", "ar_SA", "fa_IR", "he_IL", "hi_IN", "bn_BD", "gu_IN", "mr_IN", "ne_NP",
    "or_IN", "ta_IN", "si_LK", "th_TH",
)  # fmt: skip

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = "\u3040-\u30ff"
_HANGUL = "\uac00-\ud7af"
_CJK = f"[{_HAN}{_KANA}{_HANGUL}]"
# Letters and combining marks of the caseless scripts written with spaces.
_CASELESS_WORD = (
    "[\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\u0900-\u097f\u0980-\u09ff\u0a80-\u0aff\u0b00-\u0b7f"
    "\u0b80-\u0bff\u0d80-\u0dff\u0e00-\u0e7f\ufb50-\ufdff\ufe70-\ufeff]+"
)
_CASELESS_PAIR = re.compile(rf"(?<!\S){_CASELESS_WORD}(?:\s{_CASELESS_WORD}){{1,2}}")
_HONORIFIC = re.compile(
    rf"({_CJK}{{2,4}})\s?(?:先生|女士|小姐|老师|老師|同学|教授|医生|醫生|经理|さん|様|さま|氏|くん|君|ちゃん|先輩|씨|님|선생님|교수님)"
)
_CJK_RUN = re.compile(rf"{_CJK}{{2,5}}(?:\s{_CJK}{{1,3}})?")
# "My name is" in many languages; what follows is the name (up to three words, or a CJK run).
# Tried only where a word starts: a long alternation tried at every character is slow.
_NAME_CUES = re.compile(
    r"(?i)(?<![^\W\d_])(?=[^\W\d_])(?:\bmy\s+name\s+is|\bi['’]?m\s+called|je\s+m['’]appelle|mon\s+nom\s+est|ich\s+hei(?:ße|sse)"
    r"|mein\s+name\s+ist|me\s+llamo|mi\s+nombre\s+es|mi\s+chiamo|il\s+mio\s+nome\s+è|meu\s+nome\s+é|me\s+chamo"
    r"|mijn\s+naam\s+is|ik\s+heet|jag\s+heter|jeg\s+hedder|jeg\s+heter|nazywam\s+się|mám\s+jméno|jmenuji\s+se"
    r"|меня\s+зовут|мене\s+звати|моё\s+имя|мое\s+имя|με\s+λένε|ονομάζομαι|benim\s+adım|adım|tên\s+tôi\s+là"
    r"|nama\s+saya|jina\s+langu\s+ni|numele\s+meu\s+este|nevem|a\s+nevem|minun\s+nimeni\s+on|nimeni\s+on)"
    r"[\s:,]*"
)
_CUE_CJK = re.compile(
    r"(?:我叫|我的名字是|我的名字叫|名叫|姓名[:：]?|私の名前は|私は|제\s?이름은|저는|이름은)\s*"
)
_CUE_CASELESS = re.compile(
    r"(?:मेरा\s+नाम|मेरा\s+नाम\s+है|اسمي|اسمى|أنا\s+اسمي|שמי|השם\s+שלי\s+הוא|ชื่อ|نام\s+من)\s*"
)
_CUED_CASED = re.compile(r"[^\W\d_][^\s,.;:!?()]*(?:\s+[^\W\d_][^\s,.;:!?()]*){0,2}")


@lru_cache(maxsize=1)
def _lists() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """(CJK given names, CJK surnames, caseless first names, caseless last names)."""

    def load(locales: tuple[str, ...]) -> tuple[set[str], set[str]]:
        firsts: set[str] = set()
        lasts: set[str] = set()
        for locale in locales:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
            for attr in ("first_names", "first_names_male", "first_names_female"):
                firsts.update(_names(getattr(provider, attr, ())))
            lasts.update(_names(getattr(provider, "last_names", ())))
        return firsts, lasts

    cjk_first, cjk_last = load(_CJK_LOCALES)
    first, last = load(_CASELESS_LOCALES)
    # Single letters would be every word's first letter in Arabic or Hindi text.
    first = {n for n in first if len(n) >= 2}
    last = {n for n in last if len(n) >= 2}
    return frozenset(cjk_first), frozenset(cjk_last), frozenset(first), frozenset(last)


def _names(value: object) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(v).strip() for v in value]
    return []


def find_world_names(text: str) -> Iterator[Entity]:
    """Names in caseless scripts, and names after a "my name is" cue in any language."""
    if not text.isascii():
        yield from _cjk(text)
        yield from _caseless(text)
        for cue, body in ((_CUE_CJK, _CJK_RUN), (_CUE_CASELESS, _CASELESS_PAIR)):
            for m in cue.finditer(text):
                n = body.match(text, m.end())
                if n is not None:
                    yield _entity(n.start(), _trim_cjk(n.group()))
    for m in _NAME_CUES.finditer(text):
        n = _CUED_CASED.match(text, m.end())
        if n is not None and n.group()[:1].isupper():
            words = n.group().split()
            keep = [w for w in words if w[:1].isupper()]
            value = " ".join(words[: len(keep)]) if keep == words[: len(keep)] else words[0]
            yield _entity(n.start(), value)


def _cjk(text: str) -> Iterator[Entity]:
    given, surnames, _, _ = _lists()
    for m in _HONORIFIC.finditer(text):
        run = m.group(1)
        # The name is the tail of the run that starts with a listed surname ("见了王伟先生").
        for k in range(len(run) - 1):
            tail = run[k:]
            if any(tail.startswith(s) and len(tail) > len(s) for s in (tail[:2], tail[:1]) if s in surnames):
                yield _entity(m.start(1) + k, tail)
                break
    for surname in _surnames_in(text, surnames):
        start, name = surname
        rest = text[start + len(name) : start + len(name) + 4]  # a bounded slice: never the whole tail
        spaced = rest.startswith(" ")
        rest = rest.lstrip(" ")
        for n in (3, 2, 1):
            if rest[:n] in given and len(rest[:n]) == n:
                yield _entity(start, text[start : start + len(name) + int(spaced) + n])
                break


def _surnames_in(text: str, surnames: frozenset[str]) -> Iterator[tuple[int, str]]:
    """Where a listed surname starts (two-character ones first: "欧阳" before "欧")."""
    for m in _surname_pattern(surnames).finditer(text):
        yield m.start(), m.group()


@lru_cache(maxsize=1)
def _surname_pattern(surnames: frozenset[str]) -> re.Pattern[str]:
    ordered = sorted(surnames, key=lambda s: (-len(s), s))
    return re.compile("|".join(map(re.escape, ordered)))


def _caseless(text: str) -> Iterator[Entity]:
    _, _, first, last = _lists()
    for m in _CASELESS_PAIR.finditer(text):
        words = m.group().split()
        for i in range(len(words) - 1):
            if words[i] in first and (words[i + 1] in last or words[i + 1] in first):
                start = m.start() + len(" ".join(words[:i])) + (1 if i else 0)
                yield _entity(start, f"{words[i]} {words[i + 1]}")
                break


def _trim_cjk(value: str) -> str:
    # A cue's CJK run stops at a particle or verb that follows the name ("我叫王伟，是...").
    return re.split(r"[，。、,.\s]|です|입니다|이에요|예요|是|だ", value, maxsplit=1)[0] or value


def _entity(start: int, value: str) -> Entity:
    return Entity(start, start + len(value), "PERSON", value, "PERSON:" + value.casefold())
