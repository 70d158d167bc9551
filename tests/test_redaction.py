"""Redaction: behaviour, speed, recall on planted PII, false positives on clean text.

``tests/data/planted_pii.jsonl`` holds real HH-RLHF and PandaLM texts with PII and secrets
spliced in at sentence boundaries (values from Faker or random in each secret's real
format). Regenerate it with ``PYTHONPATH=. python tests/test_redaction.py --regenerate``
(needs ``../shared/data``); the test reads only the committed file.

Names are planted from three groups so that the figure is honest about the dictionary
recogniser: ``listed`` (Faker en_US/en_GB, the lists the recogniser uses), ``weak``
(de/fr/es/it, listed but only counted before a surname) and ``unlisted`` (nl/sv/fi/cs/id
names the recogniser has never seen).
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

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

# Recall floors per type (share of planted values fully covered by a redaction). Set a few
# points under the measured figures so a regression fails, and PERSON lower: the dictionary
# recogniser misses names from lists it has not seen (reported per group below).
RECALL_FLOOR = {
    "EMAIL": 0.98,
    "PHONE": 0.90,
    "CREDIT_CARD": 0.98,
    "IP_ADDRESS": 0.98,
    "AWS_KEY": 0.98,
    "GITHUB_TOKEN": 0.98,
    "SLACK_TOKEN": 0.98,
    "API_KEY": 0.98,
    "BEARER_TOKEN": 0.95,
    "PRIVATE_KEY": 0.98,
    "SECRET": 0.90,
    "PERSON": 0.75,
}
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
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq98zXa\n-----END RSA PRIVATE KEY-----"
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
            "API_KEY": 1,
            "BEARER_TOKEN": 1,
            "SECRET": 1,
            "PERSON": 2,
            "PRIVATE_KEY": 1,
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
    t0 = time.perf_counter()
    for p in pairs:
        redact_pair(*p)
    per_pair_ms = (time.perf_counter() - t0) / len(pairs) * 1000
    print(f"\nredact_pair: {per_pair_ms:.2f} ms per pair over {len(pairs)} PandaLM + HH-RLHF pairs")
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
    ],
    ids=["boundaries", "many-names", "pem-begins", "secret-words", "phone-fragments", "digits"],
)
def test_adversarial_input_stays_fast(text: str) -> None:
    """Fields may be 200k characters; no pattern may go quadratic on crafted text."""
    t0 = time.perf_counter()
    redact_pair(text, "", "")
    assert time.perf_counter() - t0 < 2.0


# --- recall on planted PII -------------------------------------------------------------------


def test_recall_on_planted_pii() -> None:
    records = _load_planted()
    total: Counter[str] = Counter()
    covered: Counter[str] = Counter()
    typed: Counter[str] = Counter()
    person_groups: dict[str, list[bool]] = defaultdict(list)
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
            if kind == "PERSON":
                person_groups[item["group"]].append(ok)
            if not ok:
                misses.append((kind, item["value"]))
            else:
                assert item["value"] not in redacted or len(item["value"]) < 4
    assert sum(total.values()) >= 200
    print(f"\nplanted items: {sum(total.values())} in {len(records)} texts")
    print(f"{'type':<14}{'n':>5}{'recall':>8}{'typed':>8}{'floor':>7}")
    for kind in RECALL_FLOOR:
        n = total[kind]
        print(f"{kind:<14}{n:>5}{covered[kind] / n:>8.3f}{typed[kind] / n:>8.3f}{RECALL_FLOOR[kind]:>7.2f}")
    for group, hits in sorted(person_groups.items()):
        print(f"  PERSON {group:<10}{len(hits):>4}{sum(hits) / len(hits):>8.3f}")
    print("misses:", misses[:40])
    for kind, floor in RECALL_FLOOR.items():
        assert total[kind] >= 10, kind
        assert covered[kind] / total[kind] >= floor, (kind, covered[kind] / total[kind])
    listed = person_groups["listed"]
    assert sum(listed) / len(listed) >= PERSON_LISTED_FLOOR


# --- false positives on clean text ---------------------------------------------------------


def test_false_positives_on_clean_pandalm() -> None:
    """PandaLM instructions and model answers hold no real contact data or secrets, so any
    non-name finding is a false positive (bar the one business phone number in a sample
    advert, which is real). Names are counted and shown: most are public figures or
    characters, which the heuristic redacts too."""
    counts: Counter[str] = Counter()
    found: list[tuple[str, str]] = []
    n_texts = 0
    with (SHARED / "pandalm" / "testset_3annotators.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            for field in ("prompt", "response_a", "response_b"):
                n_texts += 1
                for e in find_entities(str(r[field])):
                    counts[e.type] += 1
                    found.append((e.type, e.value))
    non_name = [f for f in found if f[0] != "PERSON"]
    print(f"\nPandaLM clean texts: {n_texts}; findings by type: {dict(counts)}")
    print("non-name findings:", sorted(set(non_name)))
    print("most frequent names:", Counter(v for t, v in found if t == "PERSON").most_common(15))
    assert set(non_name) <= {("PHONE", "650-636-4884")}
    assert counts["PERSON"] / n_texts < 0.3


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
}


def _rand(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _values(rng: random.Random) -> list[tuple[str, str, str]]:
    """(type, value, group) for every planted item."""
    import ipaddress

    from faker import Faker

    Faker.seed(20240611)
    fakes = {loc: Faker(loc) for loc in ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT",
                                         "nl_NL", "sv_SE", "fi_FI", "cs_CZ", "id_ID")}
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
        out.append(("API_KEY", v, ""))
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
