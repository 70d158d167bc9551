"""Redaction: behaviour, speed, recall on planted PII, false positives on clean text.

``tests/data/planted_pii.jsonl`` holds real HH-RLHF and PandaLM texts with PII and secrets
spliced in at sentence boundaries (values from Faker or random in each secret's real
format). Regenerate it with ``PYTHONPATH=. python tests/test_redaction.py --regenerate``
(needs ``../shared/data``); the test reads only the committed file.

Names are planted from three groups so that the figure is honest about the dictionary
recogniser: ``listed`` (Faker en_US/en_GB, the lists the recogniser uses), ``weak``
(de/fr/es/it, listed but only counted before a surname) and ``unlisted`` (nl/sv/fi/cs/id
names the recogniser has never seen). IBANs, street addresses and provider keys carry a
group too (compact/spaced, country, provider), and each group is reported on its own.
"""

from __future__ import annotations

import base64
import functools
import importlib
import json
import random
import re
import string
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from api.review.redaction import (
    REDACTION_VERSION,
    RedactedPair,
    find_entities,
    redact_many,
    redact_pair,
    redact_text,
)

DATA = Path(__file__).parent / "data" / "planted_pii.jsonl"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@functools.cache
def _shared_findings(name: str, fields: tuple[str, ...]) -> tuple[tuple[str, str, tuple[Any, ...]], ...]:
    """(field, text, find_entities(text)) for every text of a shared data file, once per process:
    three tests below read the same corpora (find_entities over HH-RLHF alone is ~20 s)."""
    out = []
    with (SHARED / name).open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            for field in fields:
                text = str(r[field])
                out.append((field, text, tuple(find_entities(text))))
    return tuple(out)


HH_FIELDS = ("prompt", "chosen", "rejected")
PANDALM_FIELDS = ("prompt", "response_a", "response_b")

# Kinds found by their format plus a check (checksum, length, prefix, street type): every
# planted value must be fully redacted -- 0 leaks per kind, and per group within a kind
# (each provider's key format, each country's address format).
ZERO_LEAK = (
    "EMAIL",
    "CREDIT_CARD",
    "IBAN",
    "IP_ADDRESS",
    "STREET_ADDRESS",
    "AWS_KEY",
    "GITHUB_TOKEN",
    "SLACK_TOKEN",
    "API_KEY",
    "PRIVATE_KEY",
)
# Recall floors for the heuristic kinds (share of planted values fully covered by a
# redaction), a few points under the measured figures so a regression fails; PERSON lower:
# the dictionary recogniser misses names from lists it has not seen (reported per group).
RECALL_FLOOR = {"PHONE": 0.90, "BEARER_TOKEN": 0.95, "SECRET": 0.90, "PERSON": 0.75}
# Groups reported (and, for ZERO_LEAK kinds, asserted) one by one.
GROUPED = ("IBAN", "STREET_ADDRESS", "API_KEY", "SLACK_TOKEN", "PERSON")
PERSON_LISTED_FLOOR = 0.90


def _load_planted() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- behaviour -------------------------------------------------------------------------------


def test_stable_tokens_across_the_pair() -> None:
    pair = redact_pair(
        "Write to ana.lima@example.org, not bob@example.com.",
        "I emailed ANA.LIMA@example.org and called +1 (212) 555-0147.",
        "Her number is 212-555-0147 and her email ana.lima@example.org.",
    )
    assert isinstance(pair, RedactedPair)
    assert pair.prompt == "Write to <EMAIL_1>, not <EMAIL_2>."
    # Case of an address and formatting of a number do not make a new token.
    assert pair.response_a == "I emailed <EMAIL_1> and called <PHONE_1>."
    assert pair.response_b == "Her number is <PHONE_1> and her email <EMAIL_1>."
    assert pair.mapping == {
        "<EMAIL_1>": "ana.lima@example.org",
        "<EMAIL_2>": "bob@example.com",
        "<PHONE_1>": "+1 (212) 555-0147",
    }
    assert pair.version == REDACTION_VERSION


def test_each_type_and_its_token() -> None:
    aws = "AKIA" + "J7QW2ZLX4MNB8PRT"
    ghp = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    text = (
        f"Mail m.chen@uni.edu, card 4539 1488 0343 6467, host 192.168.10.24 or 2001:db8:85a3::8a2e:370:7334. "
        f"AWS {aws}, GitHub {ghp}, Slack xoxb-2048-1024-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2, "
        "OpenAI sk-proj-Q3v9Xw2Lm8Np4Rt7Yz1Bc6Df0Gh5Jk, Authorization: Bearer 9f8e7d6c5b4a39281716aBcDeF, "
        "db_password = Tr0ub4dor&3, John Smith met Dr. Okafor.\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq98zXa\n-----END RSA PRIVATE KEY-----\n"
        "Pay DE89370400440532013000 at 1600 Pennsylvania Avenue NW, Washington, DC 20500. "
        "HF hf_Q3v9Xw2Lm8Np4Rt7Yz1Bc6Df0Gh5JkLmNp and GitLab glpat-a1B2c3D4e5F6g7H8i9J0."
    )
    redacted, mapping = redact_text(text)
    kinds = Counter(re.sub(r"_\d+>$", "", tok).lstrip("<") for tok in mapping)
    assert kinds == Counter(
        {
            "EMAIL": 1,
            "CREDIT_CARD": 1,
            "IP_ADDRESS": 2,
            "AWS_KEY": 1,
            "GITHUB_TOKEN": 1,
            "SLACK_TOKEN": 1,
            "API_KEY": 3,
            "BEARER_TOKEN": 1,
            "SECRET": 1,
            "PERSON": 2,
            "PRIVATE_KEY": 1,
            "IBAN": 1,
            "STREET_ADDRESS": 1,
        }
    ), redacted
    for original in mapping.values():
        assert original not in redacted
    assert "Dr. <PERSON_2>" in redacted and "Bearer <BEARER_TOKEN_1>" in redacted


def test_validators_reject_lookalikes() -> None:
    # Luhn-invalid card, out-of-range IPv4, version strings, clock times, C++ scopes,
    # code identifiers after secret-ish names, placeholders, prose after "basic".
    clean = (
        "Order 4539 1488 0343 6468 shipped. Version 1.2.3 at 999.1.1.1 and 12:30:45. "
        "std::vector and a::b. token = tokenizer.encode(text); password = getpass() "
        'api_key = os.environ["API_KEY"], secret: <your-secret-here>. A basic understanding of math.'
    )
    assert find_entities(clean) == []


def test_an_iban_wins_over_the_phone_and_card_its_digits_look_like() -> None:
    # "number" in front made the phone recogniser take the middle of this IBAN (issue 10).
    text, mapping = redact_text("My IBAN number is DE89 3704 0044 0532 0130 00. Thanks!")
    assert text == "My IBAN number is <IBAN_1>. Thanks!"
    assert mapping == {"<IBAN_1>": "DE89 3704 0044 0532 0130 00"}
    # The compact and the spaced form of one IBAN are one account: one token.
    text, mapping = redact_text("Pay GB29 NWBK 6016 1331 9268 19, i.e. GB29NWBK60161331926819.")
    assert text == "Pay <IBAN_1>, i.e. <IBAN_1>." and len(mapping) == 1
    # Capitals after the IBAN are not part of it: the country's length says where it ends.
    assert redact_text("IBAN GB29 NWBK 6016 1331 9268 19 BIC NWBKGB2L")[0] == "IBAN <IBAN_1> BIC NWBKGB2L"


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("I live at 221B Baker Street, London NW1 6XE.", "221B Baker Street, London NW1 6XE"),
        (
            "Send it to 1600 Pennsylvania Avenue NW, Washington, DC 20500 please.",
            "1600 Pennsylvania Avenue NW, Washington, DC 20500",
        ),
        ("Ship to:\nFlat 3, 12 High St\nLondon\nSW1A 1AA\nThanks", "Flat 3, 12 High St\nLondon\nSW1A 1AA"),
        (
            "Office: 350 5th Ave, Suite 210, New York, NY 10118, USA",
            "350 5th Ave, Suite 210, New York, NY 10118, USA",
        ),
        ("He was a tenant of 1510 S. Barrington Avenue in Tampa.", "1510 S. Barrington Avenue"),
        ("I live at 42 Oak Grove.", "42 Oak Grove"),  # a weak street type after "live at"
        ("Meine Adresse: Musterstraße 12, 10115 Berlin.", "Musterstraße 12, 10115 Berlin"),
        ("Wir wohnen in der Berliner Straße 5a.", "Berliner Straße 5a"),
        ("Kantoor: Keizersgracht 123, 1016 EE Amsterdam", "Keizersgracht 123, 1016 EE Amsterdam"),
        ("Envoyez à 12, rue de la Paix, 75002 Paris", "12, rue de la Paix, 75002 Paris"),
        ("La oficina está en Calle Mayor 5, 28013 Madrid.", "Calle Mayor 5, 28013 Madrid"),
        ("Vivo en Plaza de España 3.", "Plaza de España 3"),
        ("Abito in Via Roma 10, 00184 Roma (RM).", "Via Roma 10, 00184 Roma (RM)"),
        ("Moro na Rua Augusta 100, 1100-053 Lisboa.", "Rua Augusta 100, 1100-053 Lisboa"),
    ],
)
def test_street_address_forms(text: str, address: str) -> None:
    """The street line with its unit, city and postcode is one token; the words around stay."""
    redacted, mapping = redact_text(text)
    assert mapping == {"<STREET_ADDRESS_1>": address}, redacted
    assert redacted == text.replace(address, "<STREET_ADDRESS_1>")


@pytest.mark.parametrize(
    "text",
    [
        "In 1969 Abbey Road was released.",  # a year, not a house number
        "All 9 Supreme Court justices agreed.",  # "Court" is a word too: needs an address around it
        "Top 5 Central Park sights and 3 Times Square shows.",
        "The Plaza Hotel 5 stars review.",
        "Chapter 12 Main Points to remember.",
        "GB29 NWBK 6016 1331 9268 18 and DE89370400440532013001",  # IBAN checksums fail
        "AB12 3456 7890 1234 5678 90",  # not a country's IBAN
        "Use sk-learn, hf_hub_download(), glpat-token and npm_modules in the docs.",
        "Set GITLAB_TOKEN=glpat-xxxx and HF_TOKEN=hf_your_token_here.",  # placeholders
    ],
)
def test_new_recognisers_reject_lookalikes(text: str) -> None:
    found = [(e.type, e.value) for e in find_entities(text) if e.type != "PERSON"]
    assert found == []


def test_a_uk_account_is_a_bank_account_not_an_iban() -> None:
    found = [(e.type, e.value) for e in find_entities("Wire 25 GBP to account 12345678, sort code 60-16-13.")]
    assert found == [("BANK_ACCOUNT", "12345678"), ("BANK_ACCOUNT", "60-16-13")]


@pytest.mark.parametrize(
    "key",
    [
        "hf_" + "aB3dE6gH9jK2mN5pQ8rS1tU4vW7xY0zAbC",
        "glpat-" + "a1B2c3D4e5F6g7H8i9J0",
        "glpat-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N.01.0abc12def",
        "gldt-" + "a1B2c3D4e5F6g7H8i9J0",
        "AIza" + "SyD3v9Xw2Lm8Np4Rt7Yz1Bc6Df0Gh5JkLmN",
        "sk-ant-api03-" + "Q3v9Xw2Lm8Np4Rt7Yz1Bc6Df0Gh5JkLmNpQrSt",
        "sk-proj-" + "Q3v9Xw2Lm8Np4Rt7Yz1Bc6Df0Gh5JkLmNpQrSt",
        "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "pypi-AgEIcHlwaS5vcmc" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0",
        "gsk_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V2w3X4y5Z6",
        "ya29." + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0",
        "SG." + "a1B2c3D4e5F6g7H8i9J0k1" + "." + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V",
        "ATBB" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6",
        "r8_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s",
        "xapp-1-A0123456789-1234567890123-" + "0a1b2c3d4e5f" * 5,
    ],
)
def test_provider_key_formats(key: str) -> None:
    redacted, mapping = redact_text(f"I pasted {key}. Is that safe?")
    assert list(mapping.values()) == [key] and key not in redacted


def test_name_heuristics() -> None:
    text, mapping = redact_text("Will it rain? Ask Will Jones. John Smith said Smith would call Sarah.")
    assert text == "Will it rain? Ask <PERSON_1>. <PERSON_2> said <PERSON_2> would call <PERSON_3>."
    assert mapping["<PERSON_2>"] == "John Smith"
    assert redact_text("We walked down Jackson Street to Austin Community College.")[1] == {}


def test_deterministic_and_redact_many() -> None:
    text = "Reach Maria Rossi at maria@example.it or 10.1.2.3."
    assert redact_text(text) == redact_text(text)
    texts, mapping = redact_many([text, "Judge: the reply leaks maria@example.it."])
    assert texts[1] == "Judge: the reply leaks <EMAIL_1>." and len(mapping) == 3


def test_speed_on_real_pairs() -> None:
    pairs = []
    with (SHARED / "pandalm" / "testset_3annotators.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            pairs.append((str(r["prompt"]), str(r["response_a"]), str(r["response_b"])))
    with (SHARED / "hh-rlhf" / "harmless_base_test.jsonl").open() as f:
        for _, line in zip(range(300), f, strict=False):
            r = json.loads(line)
            pairs.append((r["prompt"], r["chosen"], r["rejected"]))
    redact_pair(*pairs[0])  # loads the name lists once
    # CPU time: other work on the same cores does not stretch it, as it does wall-clock time.
    t0 = time.process_time()
    for p in pairs:
        redact_pair(*p)
    per_pair_ms = (time.process_time() - t0) / len(pairs) * 1000
    print(f"\nredact_pair: {per_pair_ms:.2f} ms of CPU per pair over {len(pairs)} PandaLM + HH-RLHF pairs")
    assert per_pair_ms < 5.0


@pytest.mark.parametrize(
    "text",
    [
        "a." * 50_000,  # a word boundary at every other character
        "John " * 20_000,  # thousands of findings
        "-----BEGIN RSA PRIVATE KEY-----\n" * 3_000,
        "token=" * 16_000,
        "+1 2 " * 20_000,
        "1 " * 50_000,
        "12 Baker " * 25_000,  # house numbers and street-name words, never a street type
        "12 Oak Street, " + "London " * 30_000,  # a city that never reaches a postcode
        "Via Roma " * 25_000,
        "GB29 " * 40_000,  # IBAN candidates that all fail
    ],
    ids=[
        "boundaries",
        "many-names",
        "pem-begins",
        "secret-words",
        "phone-fragments",
        "digits",
        "street-words",
        "city-run",
        "type-first",
        "iban-groups",
    ],
)
def test_adversarial_input_stays_fast(text: str) -> None:
    """Fields may be 200k characters; no pattern may go quadratic on crafted text."""
    t0 = time.process_time()  # CPU time: a busy machine does not stretch it
    redact_pair(text, "", "")
    assert time.process_time() - t0 < 2.0


# --- recall on planted PII -------------------------------------------------------------------


def test_recall_on_planted_pii() -> None:
    records = _load_planted()
    total: Counter[str] = Counter()
    covered: Counter[str] = Counter()
    typed: Counter[str] = Counter()
    groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
    misses: list[tuple[str, str]] = []
    for rec in records:
        entities = find_entities(rec["text"])
        redacted, _ = redact_text(rec["text"])
        for item in rec["planted"]:
            kind, start, end = item["type"], item["start"], item["end"]
            assert rec["text"][start:end] == item["value"]
            spans = [e for e in entities if e.start < end and e.end > start]
            # Covered: every character of the value is inside a redaction, so none leaks.
            chars = set(range(start, end))
            for e in spans:
                chars -= set(range(e.start, e.end))
            ok = not chars
            total[kind] += 1
            covered[kind] += ok
            typed[kind] += ok and all(e.type == kind for e in spans)
            if kind in GROUPED:
                groups[kind, item["group"]].append(ok)
            if not ok:
                misses.append((kind, item["value"]))
            else:
                assert item["value"] not in redacted or len(item["value"]) < 4
    assert sum(total.values()) >= 300
    print(f"\nplanted items: {sum(total.values())} in {len(records)} texts")
    print(f"{'type':<16}{'n':>5}{'leaks':>7}{'recall':>8}{'typed':>8}{'floor':>7}")
    for kind in (*ZERO_LEAK, *RECALL_FLOOR):
        n = total[kind]
        floor = RECALL_FLOOR.get(kind, 1.0)
        recall, typed_share = covered[kind] / n, typed[kind] / n
        print(f"{kind:<16}{n:>5}{n - covered[kind]:>7}{recall:>8.3f}{typed_share:>8.3f}{floor:>7.2f}")
    for (kind, group), hits in sorted(groups.items()):
        print(f"  {kind} {group or '-':<16}{len(hits):>4}{len(hits) - sum(hits):>7}")
    print("misses:", misses[:40])
    for kind in ZERO_LEAK:
        assert total[kind] >= 10, kind
        assert covered[kind] == total[kind], (kind, [v for k, v in misses if k == kind])
        assert typed[kind] == total[kind], kind  # not cut short by another type's token either
    for kind, floor in RECALL_FLOOR.items():
        assert total[kind] >= 10, kind
        assert covered[kind] / total[kind] >= floor, (kind, covered[kind] / total[kind])
    listed = groups["PERSON", "listed"]
    assert sum(listed) / len(listed) >= PERSON_LISTED_FLOOR


# --- false positives on clean text ---------------------------------------------------------


# Real data in the clean corpora: a business phone number in a sample advert, and the
# addresses of property listings the PandaLM instructions ask to describe.
PANDALM_REAL = {
    ("PHONE", "650-636-4884"),
    ("STREET_ADDRESS", "412 Monterey Ave, Capitola, CA 95010"),
    ("STREET_ADDRESS", "100 Capitola Knolls Way, Capitola, CA 95010"),
    ("STREET_ADDRESS", "1700 Pacific Coast Hwy, Capitola, CA"),
    ("STREET_ADDRESS", "444 29th St."),
}


def test_false_positives_on_clean_pandalm() -> None:
    """PandaLM instructions and model answers hold no private contact data or secrets, so any
    non-name finding is a false positive (bar the real ones in PANDALM_REAL). Names are
    counted and shown: most are public figures or characters, which the heuristic redacts too."""
    counts: Counter[str] = Counter()
    found: list[tuple[str, str]] = []
    n_texts = 0
    for _, _, entities in _shared_findings("pandalm/testset_3annotators.jsonl", PANDALM_FIELDS):
        n_texts += 1
        for e in entities:
            counts[e.type] += 1
            found.append((e.type, e.value))
    non_name = [f for f in found if f[0] != "PERSON"]
    print(f"\nPandaLM clean texts: {n_texts}; findings by type: {dict(counts)}")
    print("non-name findings:", sorted(set(non_name)))
    print("most frequent names:", Counter(v for t, v in found if t == "PERSON").most_common(15))
    assert set(non_name) <= PANDALM_REAL
    assert counts["PERSON"] / n_texts < 0.3


def test_new_kinds_on_hh_rlhf() -> None:
    """HH-RLHF dialogues (2,307, every turn) hold no IBANs or provider keys, so any is a false
    positive. They do hold street addresses: users ask for celebrities' and politicians' home
    addresses and the assistant answers with real or invented ones. Those are shown, and
    bounded so a recogniser that starts firing on prose fails."""
    found: Counter[tuple[str, str]] = Counter()
    for _, _, entities in _shared_findings("hh-rlhf/harmless_base_test.jsonl", HH_FIELDS):
        for e in entities:
            if e.type in ("IBAN", "STREET_ADDRESS", "API_KEY", "SLACK_TOKEN"):
                found[e.type, e.value] += 1
    print("\nHH-RLHF findings of the redact-v2 kinds:", sorted(found))
    assert not [k for k in found if k[0] != "STREET_ADDRESS"]
    # 37 distinct at redact-v2, every one an address on inspection (printed above).
    assert sum(t == "STREET_ADDRESS" for t, _ in found) <= 45


# --- the world's identifiers (redact-v3) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("NI number AB 12 34 56 C please", "NATIONAL_ID", "AB 12 34 56 C"),
        ("Aadhaar: 2341 2341 2346", "NATIONAL_ID", "2341 2341 2346"),
        ("CPF 111.444.777-35 do titular", "NATIONAL_ID", "111.444.777-35"),
        ("CNPJ 11.222.333/0001-81", "NATIONAL_ID", "11.222.333/0001-81"),
        ("SSN 536-90-4399", "NATIONAL_ID", "536-90-4399"),
        ("codice fiscale RCCMNL83S18D969H", "NATIONAL_ID", "RCCMNL83S18D969H"),
        ("DNI 54362315K", "NATIONAL_ID", "54362315K"),
        ("NIE X-2482300-W", "NATIONAL_ID", "X-2482300-W"),
        ("Steuer-ID 36 574 261 809", "NATIONAL_ID", "36 574 261 809"),
        ("BSN 111222333", "NATIONAL_ID", "111222333"),
        ("PESEL 44051401359", "NATIONAL_ID", "44051401359"),
        ("n° de sécu 2 95 10 99 126 111 93", "NATIONAL_ID", "2 95 10 99 126 111 93"),
        ("personnummer 880320-0016", "NATIONAL_ID", "880320-0016"),
        ("HETU 131052-308T", "NATIONAL_ID", "131052-308T"),
        ("CURP BOXW310820HNERXN09", "NATIONAL_ID", "BOXW310820HNERXN09"),
        ("身份证号码是360426199101010071。", "NATIONAL_ID", "360426199101010071"),
        ("주민등록번호 971013-9019902", "NATIONAL_ID", "971013-9019902"),
        ("TC kimlik 17291716060", "NATIONAL_ID", "17291716060"),
        ("Nigerian NIN: 12345678901", "NATIONAL_ID", "12345678901"),  # no checksum: the word says it
        ("Reisepassnummer C01X00T47", "PASSPORT", "C01X00T47"),
        ("护照号码：E12345678", "PASSPORT", "E12345678"),
        ("passport no. AB 1234567", "PASSPORT", "AB 1234567"),
        ("geboren am 3. März 1985 in Köln", "DATE_OF_BIRTH", "3. März 1985"),
        ("fecha de nacimiento: 12 de marzo de 1985", "DATE_OF_BIRTH", "12 de marzo de 1985"),
        ("生年月日：1985年3月12日", "DATE_OF_BIRTH", "1985年3月12日"),
        ("DOB 03/12/1985", "DATE_OF_BIRTH", "03/12/1985"),
        ("дата рождения 12 марта 1985 г.", "DATE_OF_BIRTH", "12 марта 1985"),
        ("MAC 00:1A:2B:3C:4D:5E", "MAC_ADDRESS", "00:1A:2B:3C:4D:5E"),
        ("mac a4-5e-60-c2-11-0f", "MAC_ADDRESS", "a4-5e-60-c2-11-0f"),
        ("Cisco 001a.2b3c.4d5e", "MAC_ADDRESS", "001a.2b3c.4d5e"),
        ("mail josé.müller@bücher.de", "EMAIL", "josé.müller@bücher.de"),
        ("邮箱 用户@例子.中国", "EMAIL", "用户@例子.中国"),
        ("write jane (at) example (dot) org", "EMAIL", "jane (at) example (dot) org"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "API_KEY", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("pk_live_51H8x2ZK3v9Y6aBcDeFgHiJkL", "API_KEY", "pk_live_51H8x2ZK3v9Y6aBcDeFgHiJkL"),
        (
            "ul. Marszałkowska 84/92, 00-514 Warszawa",
            "STREET_ADDRESS",
            "ul. Marszałkowska 84/92, 00-514 Warszawa",
        ),
        ("Andrássy út 60, 1062 Budapest", "STREET_ADDRESS", "Andrássy út 60, 1062 Budapest"),
        ("住在上海市浦东新区世纪大道100号", "STREET_ADDRESS", "上海市浦东新区世纪大道100号"),
        ("서울특별시 강남구 테헤란로 152", "STREET_ADDRESS", "서울특별시 강남구 테헤란로 152"),
        ("I met Nguyễn Văn An", "PERSON", "Nguyễn Văn"),
        ("Встретил Сергей Смирнов", "PERSON", "Сергей Смирнов"),
        ("我叫王秀英。", "PERSON", "王秀英"),
        ("ask राहुल शर्मा", "PERSON", "राहुल शर्मा"),
        ("je m'appelle Amélie Poulain", "PERSON", "Amélie Poulain"),
        ("routing number 021000021", "BANK_ACCOUNT", "021000021"),
        ("Kontonummer: 0532013000", "BANK_ACCOUNT", "0532013000"),
        ("sort code 12-34-56", "BANK_ACCOUNT", "12-34-56"),
        ("EIN 12-3456789", "NATIONAL_ID", "12-3456789"),
        ("driver's license D1234567", "NATIONAL_ID", "D1234567"),
        (
            "ETH 0x52908400098527886E0F7030069857D2E4169EE7",
            "CRYPTO_ADDRESS",
            "0x52908400098527886E0F7030069857D2E4169EE7",
        ),
        ("BTC 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "CRYPTO_ADDRESS", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
        ("Telefon: 030 12345678", "PHONE", "030 12345678"),
        ("电话13812345678", "PHONE", "13812345678"),
    ],
)
def test_world_identifiers(text: str, kind: str, value: str) -> None:
    found = [(e.type, e.value) for e in find_entities(text)]
    assert (kind, value) in found, found


@pytest.mark.parametrize(
    "text",
    [
        "Order 12345678901 shipped.",  # 11 digits, no id word (fails CPF and TC checks)
        "The invoice 123456789 is paid.",
        "ISBN 978-3-16-148410-0",
        "the passport office is open until 5 pm",
        "At 10:30 on 12/03/2024 we met.",  # a date without a birth word
        "born to run",
        "MAC and cheese at 12:30:45, dead.beef.cafe",
        "someone at knife point better",
        "a place back in 2016, a plac 5",
        "North Korea and Sri Lanka",
        "id 42 and PAN card",
        "Via email, 3 of us",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3 fails its base58 checksum",
        "Er hat ein 1000000 Euro Haus",  # "ein" is an article, not an EIN
    ],
)
def test_world_recognisers_reject_lookalikes(text: str) -> None:
    assert find_entities(text) == []


def test_false_positives_of_the_world_kinds_on_all_shared_data() -> None:
    """Every text of ../shared/data (HH-RLHF, PandaLM, LLMBar dev): the kinds added at redact-v3
    are bounded (measured: one SSN-shaped number and two birth dates in HH-RLHF, which ask for
    personal data; nothing in PandaLM or LLMBar), and the share of masked words stays small."""
    new_kinds = ("NATIONAL_ID", "PASSPORT", "DATE_OF_BIRTH", "MAC_ADDRESS", "CRYPTO_ADDRESS", "BANK_ACCOUNT")
    found: Counter[tuple[str, str]] = Counter()
    words = masked = 0
    sources = (
        ("hh-rlhf/harmless_base_test.jsonl", HH_FIELDS),
        ("pandalm/testset_3annotators.jsonl", PANDALM_FIELDS),
        ("replay/llmbar_dev.jsonl", PANDALM_FIELDS),
    )
    for name, fields in sources:
        for _, text, entities in _shared_findings(name, fields):
            words += len(text.split())
            for e in entities:
                masked += max(1, len(e.value.split()))
                if e.type in new_kinds:
                    found[e.type, e.value] += 1
    print(f"\nshared data: {words} words, {masked} masked ({masked / words:.2%}); new kinds: {sorted(found)}")
    assert sum(found.values()) <= 5
    assert masked / words < 0.01


# A second held-out set of the world's identifiers, written after the recognisers were tuned
# on tests/planted_world.py, in other phrasing. Measured once as written: 4 of 33 leaked; the
# three fixed since were generalisations ("N.I. no.", a bare "ID" before a number,
# transliterated Russian street types). The one left is a name in no list ("Thandiwe Mokoena").
FRESH_WORLD = [
    (
        "UK_NINO",
        "QQ123456C",
        "Hi, HR here - can you confirm your N.I. no. is QQ123456C?",
    ),  # QQ is not a valid prefix: a test value
    ("UK_NINO", "JG 10 37 42 A", "my national insurance: JG 10 37 42 A (from the P60)"),
    ("AADHAAR", "4991 1866 5246", "aadhaar card no 4991 1866 5246, pls check"),
    ("CPF", "529.982.247-25", "o CPF dela é 529.982.247-25, confere?"),
    ("US_SSN", "078-05-1120", "SSN on the form: 078-05-1120"),
    ("PASSPORT", "L898902C3", "passport L898902C3 expires next month"),
    ("PASSPORT", "X1234567", "Mi pasaporte es X1234567"),
    ("PASSPORT", "123456789", "Паспорт: 123456789, выдан в 2015"),
    ("DOB", "14/02/1990", "d.o.b. 14/02/1990"),
    ("DOB", "2 July 1978", "she was born 2 July 1978 in Leeds"),
    ("DOB", "1992-11-05", "Geburtsdatum 1992-11-05"),
    ("DOB", "15 Ağustos 1988", "Doğum tarihi: 15 Ağustos 1988"),
    ("MAC", "3C:22:FB:7A:10:9E", "device 3C:22:FB:7A:10:9E keeps dropping off wifi"),
    ("EMAIL", "müller@straße.de", "Schreib an müller@straße.de"),
    ("EMAIL", "иван.петров@почта.рф", "почта: иван.петров@почта.рф"),
    (
        "STRIPE",
        "whsec_5Xf8Qe3RkZ9mN2pL7vT4yW1bC6dH0jA",
        "endpoint secret whsec_5Xf8Qe3RkZ9mN2pL7vT4yW1bC6dH0jA",
    ),
    (
        "STRIPE",
        "pk_live_51Nz3hGJvP0xQ8rT2yU6iO9pA4sD7fG1hJ",
        "publishable pk_live_51Nz3hGJvP0xQ8rT2yU6iO9pA4sD7fG1hJ in the page source",
    ),
    ("ADDRESS", "ul. Długa 12/4, 80-827 Gdańsk", "send it to ul. Długa 12/4, 80-827 Gdańsk"),
    ("ADDRESS", "Rruga e Durrësit 45", "Adresa: Rruga e Durrësit 45"),
    ("ADDRESS", "广州市天河区体育西路103号", "我的地址是广州市天河区体育西路103号"),
    ("ADDRESS", "大阪府大阪市北区梅田3-1-1", "住所は大阪府大阪市北区梅田3-1-1です"),
    ("ADDRESS", "İstiklal Caddesi No: 8", "İstiklal Caddesi No: 8, Beyoğlu adresindeyim"),
    ("ADDRESS", "Nevsky prospekt 28", "We stayed at Nevsky prospekt 28"),
    ("PERSON", "Nnamdi Okafor", "Nnamdi Okafor signed the lease"),
    ("PERSON", "Thandiwe Mokoena", "Please ask Thandiwe Mokoena about it"),
    ("PERSON", "Lê Văn Tám", "My colleague Lê Văn Tám is on leave"),
    ("PERSON", "Fatima Al-Sayed", "Contact: Fatima Al-Sayed"),
    ("PERSON", "Ahmet Öztürk", "Ahmet Öztürk aradı"),
    ("PERSON", "Ольга Кузнецова", "Звонила Ольга Кузнецова"),
    ("PERSON", "陈静", "陈静女士明天来"),
    ("PERSON", "이지은", "이지은 씨에게 연락하세요"),
    ("NATIONAL_ID", "7501015800084", "South African ID 7501015800084"),
    ("NATIONAL_ID", "12345-1234567-1", "CNIC 12345-1234567-1"),
]
FRESH_WORLD_MAX_LEAKS = 1


def test_fresh_held_out_world_set() -> None:
    token = re.compile(r"<[A-Z_]+_\d+>")
    leaks = []
    for kind, value, text in FRESH_WORLD:
        shown = token.sub(" ", redact_text(text)[0])
        parts = [p.strip(",.;:") for p in value.split()]
        if value in shown or any(p in shown for p in parts if sum(c.isalnum() for c in p) >= 4):
            leaks.append((kind, text))
    print(f"\nfresh held-out set: {len(leaks)} of {len(FRESH_WORLD)} leaked: {leaks}")
    assert len(leaks) <= FRESH_WORLD_MAX_LEAKS


def test_recogniser_doctests() -> None:
    """The examples in the recognisers' docstrings hold."""
    import doctest

    from api.review import redaction
    from api.review.redaction import (
        address,
        address_world,
        contact,
        ids,
        names,
        names_world,
        payment,
        secrets,
    )

    modules = (redaction, address, address_world, contact, ids)
    for module in (*modules, names, names_world, payment, secrets):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# --- regenerating the planted set ----------------------------------------------------------

_TEMPLATES: dict[str, list[str]] = {
    "EMAIL": [
        "You can reach me at {v} if anything changes.",
        "Please forward the invoice to {v} by Friday.",
        "My old address was {v}, but I rarely check it.",
        "Send the draft to {v} and copy me in.",
        "Her contact is {v}.",
    ],
    "PHONE": [
        "Call me at {v} after 6pm.",
        "Her cell is {v}, text before calling.",
        "The front desk number is {v}.",
        "You can reach him on {v} most mornings.",
        "Phone: {v}",
        "If it breaks again, ring {v} and ask for the manager.",
    ],
    "CREDIT_CARD": [
        "My card number is {v}, expiry 09/27.",
        "I paid with {v} but the charge never went through.",
        "Use the card ending in the number {v} for the booking.",
        "Card: {v} CVV 381",
    ],
    "IP_ADDRESS": [
        "The server at {v} keeps timing out.",
        "Login attempts came from {v} last night.",
        "Point the DNS record at {v} and wait an hour.",
        "My router's address is {v}, is that normal?",
    ],
    "AWS_KEY": [
        "I set AWS_ACCESS_KEY_ID to {v} in the config.",
        "The access key {v} shows up in the logs.",
        "export AWS_ACCESS_KEY_ID={v}",
    ],
    "GITHUB_TOKEN": [
        "I pushed with the token {v} and it worked.",
        "git clone https://{v}@github.com/acme/app.git",
        "Our CI uses {v} to pull the private repo.",
    ],
    "SLACK_TOKEN": [
        "The bot token is {v}, keep it private.",
        "We post alerts to {v} from the cron job.",
        "SLACK_BOT_TOKEN={v}",
    ],
    "API_KEY": [
        "Here is my key: {v} - why does the API say it is invalid?",
        "openai.api_key = '{v}'",
        "I pasted {v} into the settings page.",
    ],
    "BEARER_TOKEN": [
        "curl -H 'Authorization: Bearer {v}' https://api.example.com/v1/me",
        "The request had the header Authorization: Bearer {v} and still got a 401.",
        "Send it with Bearer {v} in the header.",
    ],
    "PRIVATE_KEY": [
        "Here is the key I generated:\n{v}\nShould it work with ssh?",
        "My deploy key is below.\n{v}",
    ],
    "SECRET": [
        "{v}",
        "Here is my config: {v}",
        "I tried {v} but the login still fails.",
    ],
    "PERSON": [
        "My neighbour {v} keeps parking in front of our garage.",
        "I had lunch with {v} yesterday and she told me everything.",
        "Do you think {v} will get the promotion?",
        "The letter was signed by {v}.",
        "{v} called me twice this week.",
    ],
    "IBAN": [
        "My IBAN is {v}, please send the refund there.",
        "Transfer the deposit to IBAN {v} before the 5th.",
        "My IBAN number is {v}.",  # "number" invites the phone recogniser: the IBAN must win
        "Bank details: {v} (account holder: me).",
        "You can wire the money to {v} today.",
    ],
    "STREET_ADDRESS": [
        "I live at {v}, come by any time.",
        "Please send the package to {v}.",
        "Our new office is {v}; parking is behind the building.",
        "The party is at {v} on Saturday.",
        "Ship to:\n{v}\nThanks!",
        "{v} is where my grandmother lived.",
    ],
}


def _rand(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _values(rng: random.Random) -> list[tuple[str, str, str]]:
    """(type, value, group) for every planted item."""
    import ipaddress

    from faker import Faker

    Faker.seed(20240611)
    fakes = {
        loc: Faker(loc)
        for loc in (
            "en_US",
            "en_GB",
            "de_DE",
            "fr_FR",
            "es_ES",
            "it_IT",
            "nl_NL",
            "sv_SE",
            "fi_FI",
            "cs_CZ",
            "id_ID",
        )
    }
    us = fakes["en_US"]
    out: list[tuple[str, str, str]] = []
    for i in range(25):
        email = [us.email, us.company_email, us.free_email, fakes["de_DE"].email][i % 4]()
        out.append(("EMAIL", email.upper() if i % 9 == 0 else email, ""))
    for i in range(30):
        loc = ["en_US", "en_US", "en_GB", "de_DE", "fr_FR", "it_IT"][i % 6]
        out.append(("PHONE", fakes[loc].phone_number(), loc))
    for i in range(25):
        kind = ["visa16", "mastercard", "amex", "discover", "jcb16", "visa13"][i % 6]
        digits = us.credit_card_number(card_type=kind)
        sep = [" ", "-", "", " "][i % 4]
        groups = [digits[j : j + 4] for j in range(0, len(digits), 4)]
        if kind == "amex":
            groups = [digits[:4], digits[4:10], digits[10:]]
        out.append(("CREDIT_CARD", sep.join(groups), kind))
    for i in range(30):
        if i % 2:
            v6 = us.ipv6()
            out.append(("IP_ADDRESS", ipaddress.IPv6Address(v6).compressed if i % 4 == 1 else v6, "v6"))
        else:
            out.append(("IP_ADDRESS", us.ipv4(private=i % 4 == 0), "v4"))
    upper_digits = string.ascii_uppercase + string.digits
    for i in range(15):
        out.append(("AWS_KEY", ["AKIA", "ASIA"][i % 2] + _rand(rng, 16, upper_digits), ""))
    for i in range(15):
        if i % 3 == 2:
            out.append(("GITHUB_TOKEN", "github_pat_" + _rand(rng, 22) + "_" + _rand(rng, 59), ""))
        else:
            out.append(("GITHUB_TOKEN", ["ghp_", "gho_", "ghs_"][i % 3] + _rand(rng, 36), ""))
    for i in range(12):
        if i % 4 == 3:
            team, bot = _rand(rng, 8, upper_digits), _rand(rng, 8, upper_digits)
            v = f"https://hooks.slack.com/services/T{team}/B{bot}/{_rand(rng, 24)}"
            out.append(("SLACK_TOKEN", v, "webhook"))
        else:
            num = "".join(rng.choice(string.digits) for _ in range(12))
            out.append(("SLACK_TOKEN", f"xox{'bpa'[i % 3]}-{num}-{num[::-1]}-{_rand(rng, 24)}", ""))
    for i in range(20):
        v = [
            "sk-" + _rand(rng, 48),
            "sk-proj-" + _rand(rng, 64, string.ascii_letters + string.digits + "_-"),
            "sk-ant-api03-" + _rand(rng, 80, string.ascii_letters + string.digits + "_-"),
            "sk_live_" + _rand(rng, 24),
            "AIza" + _rand(rng, 35, string.ascii_letters + string.digits + "_-"),
        ][i % 5]
        out.append(("API_KEY", v, ["openai", "openai_project", "anthropic", "stripe", "google"][i % 5]))
    for i in range(15):
        if i % 3 == 0:
            head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
            claims = f'{{"sub":"{rng.randint(1, 10**6)}"}}'.encode()
            body = base64.urlsafe_b64encode(claims).decode().rstrip("=")
            out.append(("BEARER_TOKEN", f"{head}.{body}.{_rand(rng, 43)}", "jwt"))
        else:
            token = _rand(rng, rng.randint(24, 48), string.ascii_letters + string.digits + "-_")
            out.append(("BEARER_TOKEN", token, ""))
    b64 = string.ascii_letters + string.digits + "+/"
    for i in range(12):
        label = ["RSA ", "OPENSSH ", "EC ", "", "ENCRYPTED "][i % 5]
        body = "\n".join(_rand(rng, 64, b64) for _ in range(rng.randint(3, 8)))
        end = "" if i % 6 == 5 else f"\n-----END {label}PRIVATE KEY-----"  # pasted truncated
        block = f"-----BEGIN {label}PRIVATE KEY-----\n{body}{end}"
        out.append(("PRIVATE_KEY", block, label.strip() or "pkcs8"))
    secrets = []
    for i in range(25):
        pw = rng.choice(
            ["Tr0ub4dor&3", "hunter2!", "Summer2023!", "P@ssw0rd99", "correcthorse7", "mySecret#42"]
        )
        form = i % 8
        if form == 0:
            secrets.append(("aws_secret_access_key = ", _rand(rng, 40, b64), ""))
        elif form == 1:
            secrets.append(("DB_PASSWORD=", pw, ""))
        elif form == 2:
            secrets.append(('"client_secret": "', _rand(rng, 32), '"'))
        elif form == 3:
            secrets.append(("my password is: ", pw, ""))
        elif form == 4:
            url_pw = pw.replace("@", "a").replace("#", "h")
            secrets.append(("postgres://admin:", url_pw, "@db.internal:5432/app"))
        elif form == 5:
            django_key = _rand(rng, 50, string.ascii_letters + string.digits + "!$%^*-_")
            secrets.append(("SECRET_KEY = '", django_key, "'"))
        elif form == 6:
            secrets.append(("webhook_token: ", _rand(rng, 40, string.hexdigits.lower()[:16]), ""))
        else:
            secrets.append(("password = ", pw, ""))
    for prefix, value, suffix in secrets:
        out.append(("SECRET", value, json.dumps([prefix, suffix])))
    person_plan = [
        ("en_US", "listed", 18),
        ("en_GB", "listed", 10),
        *[(loc, "weak", 5) for loc in ("de_DE", "fr_FR", "es_ES", "it_IT")],
        *[(loc, "unlisted", 4) for loc in ("nl_NL", "sv_SE", "fi_FI", "cs_CZ", "id_ID")],
    ]
    for loc, group, n in person_plan:
        for _ in range(n):
            out.append(("PERSON", f"{fakes[loc].first_name()} {fakes[loc].last_name()}", group))
    # Kinds added with redact-v2 come last, so the values above stay what they were.
    out.extend(_ibans(rng))
    out.extend(_addresses(rng))
    out.extend(_provider_keys(rng))
    return out


def _ibans(rng: random.Random) -> list[tuple[str, str, str]]:
    """The issue's two examples, then Faker's (checksum-valid) IBANs of eight countries,
    alternately compact and in the print format's groups of four."""
    from faker import Faker

    out = [("IBAN", "GB29 NWBK 6016 1331 9268 19", "spaced"), ("IBAN", "DE89370400440532013000", "compact")]
    locales = ("en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_PT", "pl_PL")
    for i in range(18):
        iban = Faker(locales[i % len(locales)]).iban()
        if i % 2:
            out.append(("IBAN", iban, "compact"))
        else:
            out.append(("IBAN", " ".join(iban[j : j + 4] for j in range(0, len(iban), 4)), "spaced"))
    return out


def _street_name(fake: Any) -> str:
    """A one-word surname from the locale (particles like "van Olst" make no street name)."""
    while True:
        name = fake.last_name()
        if " " not in name and "'" not in name:
            return name


def _addresses(rng: random.Random) -> list[tuple[str, str, str]]:
    """Street addresses in the formats people write: the issue's two examples, then US, UK,
    German, French, Spanish, Italian, Dutch and Portuguese ones built from Faker's names,
    cities and postcodes (Faker's own street addresses use the full USPS list of ~200 street
    types, most of which nobody writes, and are not realistic enough to measure with)."""
    from faker import Faker

    out = [
        ("STREET_ADDRESS", "221B Baker Street, London NW1 6XE", "uk"),
        ("STREET_ADDRESS", "1600 Pennsylvania Avenue NW, Washington, DC 20500", "us"),
    ]
    us, uk, de, fr = Faker("en_US"), Faker("en_GB"), Faker("de_DE"), Faker("fr_FR")
    es, it, nl, pt = Faker("es_ES"), Faker("it_IT"), Faker("nl_NL"), Faker("pt_PT")
    us_types = ["Street", "St", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Blvd", "Lane", "Drive", "Court"]
    us_types += ["Place", "Way", "Parkway", "Terrace", "Circle"]
    us_names = ["Oak", "Maple", "Cedar", "Elm", "Main", "Highland", "Sunset", "Park", "Lake", "5th", "42nd"]
    for i in range(8):
        name = rng.choice(us_names) if i % 2 else _street_name(us)
        street = f"{rng.randint(1, 19999)} {'N ' if i % 4 == 1 else ''}{name} {rng.choice(us_types)}"
        unit = [", Apt 4B", " Suite 210", "", " #12"][i % 4]
        city = f"{us.city()}, {us.state_abbr(include_territories=False)} {us.zipcode()}"
        sep = ", " if i % 3 else "\n"  # the city line on the same line or the next
        out.append(("STREET_ADDRESS", f"{street}{unit}{sep}{city}", "us"))
    uk_types = [
        "Street",
        "Road",
        "Lane",
        "Avenue",
        "Close",
        "Crescent",
        "Gardens",
        "Drive",
        "Terrace",
        "Mews",
    ]
    for i in range(8):
        number = f"{rng.randint(1, 250)}{'A' if i % 5 == 2 else ''}"
        street = f"{number} {_street_name(uk)} {rng.choice(uk_types)}"
        if i % 4 == 1:
            street = f"Flat {rng.randint(1, 30)}, {street}"
        city, postcode = uk.city(), uk.postcode()
        tail = [f", {city} {postcode}", f"\n{city}\n{postcode}", f", {postcode}"][i % 3]
        out.append(("STREET_ADDRESS", street + tail, "uk"))
    for i in range(6):
        number = de.building_number()
        if i % 3 == 2:
            street = f"{rng.choice(['Berliner', 'Hamburger', 'Kölner', 'Frankfurter'])} Straße {number}"
        else:
            suffix = ["straße", "str.", "weg", "allee", "platz", "gasse"][i % 6]
            street = f"{_street_name(de)}{suffix} {number}"
        out.append(("STREET_ADDRESS", f"{street}, {de.postcode()} {de.city()}" if i % 2 else street, "de"))
    for i in range(5):
        kind = ["rue", "avenue", "boulevard", "place", "rue"][i]
        particle = ["de ", "", "du ", "", "des "][i]
        street = f"{rng.randint(1, 120)}{', ' if i % 2 else ' '}{kind} {particle}{_street_name(fr)}"
        out.append(("STREET_ADDRESS", f"{street}, {fr.postcode()} {fr.city()}" if i != 3 else street, "fr"))
    for i in range(5):
        kind = ["Calle", "Avenida de", "Paseo de la", "Plaza de", "C/"][i]
        street = f"{kind} {_street_name(es)}{', ' if i == 1 else ' '}{rng.randint(1, 200)}"
        tail = f", {es.postcode()} {es.city()}" if i % 2 == 0 else ""
        out.append(("STREET_ADDRESS", street + tail, "es"))
    # Faker's it_IT cities come from a set, in an order that changes with the hash seed.
    it_cities = sorted(importlib.import_module("faker.providers.address.it_IT").Provider.cities)
    for i in range(5):
        kind = ["Via", "Corso", "Piazza", "Viale", "Via"][i]
        street = f"{kind} {_street_name(it)}{', ' if i == 1 else ' '}{rng.randint(1, 200)}"
        tail = f", {it.postcode()} {rng.choice(it_cities)}" + (f" ({it.state_abbr()})" if i == 2 else "")
        out.append(("STREET_ADDRESS", street + tail if i != 3 else street, "it"))
    for i in range(5):
        suffix = ["straat", "laan", "gracht", "weg", "plein"][i]
        street = f"{_street_name(nl).capitalize()}{suffix} {rng.randint(1, 300)}"
        tail = [f", {nl.postcode()} {nl.city()}", f"\n{nl.postcode()} {nl.city()}", ""][i % 3]
        out.append(("STREET_ADDRESS", street + tail, "nl"))
    for i in range(3):
        kind = ["Rua", "Avenida da", "Rua de"][i]
        street = f"{kind} {_street_name(pt)} {rng.randint(1, 300)}"
        out.append(("STREET_ADDRESS", f"{street}, {pt.postcode()} {pt.city()}" if i != 1 else street, "pt"))
    return out


def _provider_keys(rng: random.Random) -> list[tuple[str, str, str]]:
    """Key formats of model providers, code hosts and registries, random in each format."""
    urlsafe = string.ascii_letters + string.digits + "_-"
    formats = {
        "huggingface": lambda: "hf_" + _rand(rng, 34),
        "gitlab": lambda: "glpat-" + _rand(rng, 20, urlsafe),
        "gitlab_routable": lambda: "glpat-" + _rand(rng, 27, urlsafe) + ".01." + _rand(rng, 9),
        "gitlab_deploy": lambda: "gldt-" + _rand(rng, 20, urlsafe),
        "npm": lambda: "npm_" + _rand(rng, 36),
        "pypi": lambda: "pypi-AgEIcHlwaS5vcmc" + _rand(rng, 70, urlsafe),
        "groq": lambda: "gsk_" + _rand(rng, 52),
        "google_oauth": lambda: "ya29." + _rand(rng, 80, urlsafe),
        "sendgrid": lambda: f"SG.{_rand(rng, 22, urlsafe)}.{_rand(rng, 43, urlsafe)}",
        "bitbucket": lambda: "ATBB" + _rand(rng, 32),
        "replicate": lambda: "r8_" + _rand(rng, 37),
    }
    out = [("API_KEY", make(), group) for group, make in formats.items() for _ in range(2)]
    for _ in range(2):
        app_id = _rand(rng, 10, string.ascii_uppercase + string.digits)
        app = f"xapp-1-A{app_id}-{rng.randint(10**12, 10**13 - 1)}"
        out.append(("SLACK_TOKEN", f"{app}-{_rand(rng, 64, string.hexdigits.lower()[:16])}", "app"))
    return out


def _hosts(rng: random.Random) -> list[tuple[str, str]]:
    hosts: list[tuple[str, str]] = []
    with (SHARED / "hh-rlhf" / "harmless_base_test.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            hosts.append((r["id"] + ":chosen", r["chosen"]))
    with (SHARED / "pandalm" / "testset_3annotators.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            hosts.append((r["id"] + ":response_a", str(r["response_a"])))
    # Hosts with other findings would blur the per-type figures.
    hosts = [(h, t) for h, t in hosts if 80 <= len(t) <= 900 and not find_entities(t)]
    rng.shuffle(hosts)
    return hosts


def regenerate(path: Path = DATA) -> None:
    rng = random.Random(7)
    values = _values(rng)
    hosts = _hosts(rng)
    records = []
    for n, (kind, value, group) in enumerate(values):
        host_id, host = hosts[n]
        template = rng.choice(_TEMPLATES[kind])
        if kind == "SECRET":
            prefix, suffix = json.loads(group)
            group = prefix.strip(" =:'\"")
            sentence = template.format(v=prefix + "\0" + suffix)
        else:
            sentence = template.format(v="\0")
        # Splice at a sentence boundary of the real text, so the value sits in real prose.
        cuts = [m.end() for m in re.finditer(r"[.!?]\s+", host)] or [len(host)]
        cut = rng.choice(cuts)
        before, after = host[:cut], host[cut:]
        if before and not before[-1].isspace():
            before += " "
        text = before + sentence.replace("\0", value) + (" " + after if after else "")
        start = len(before) + sentence.index("\0")
        records.append(
            {
                "id": f"planted-{n}",
                "host": host_id,
                "text": text,
                "planted": [
                    {"type": kind, "value": value, "start": start, "end": start + len(value), "group": group}
                ],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} records to {path}")


if __name__ == "__main__":
    if "--regenerate" in sys.argv:
        regenerate()
    else:
        sys.exit(pytest.main([__file__, "-p", "no:warnings", "-s"]))
