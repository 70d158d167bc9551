"""A planted set of the world's identifiers, written as an outsider would (helper of the tests).

``build()`` returns records ``{kind, value, text, lang, split}``: a value of one of 30 kinds
(national ids of many countries with valid check digits, passports, dates of birth, MAC
addresses, unicode emails, provider secrets, street addresses and person names of many
countries and scripts) inside a sentence in one of 14 languages. ``split`` is "dev" (the
recognisers were tuned on these) or "heldout" (another seed, other sentences, other
hand-written values: not looked at while tuning; reported apart). Deterministic; the committed
copy is ``tests/data/planted_pii_world.jsonl`` (``python -m tests.planted_world`` rewrites it).
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from pathlib import Path

from stdnum import luhn, verhoeff
from stdnum.br import cnpj, cpf
from stdnum.cn import ric
from stdnum.iso7064 import mod_11_10
from stdnum.it import codicefiscale
from stdnum.kr import rrn
from stdnum.pl import pesel
from stdnum.tr import tckimlik

DATA = Path(__file__).parent / "data" / "planted_pii_world.jsonl"

Gen = Callable[[random.Random], str]


def _digits(rng: random.Random, n: int, first: str = "123456789") -> str:
    return rng.choice(first) + "".join(rng.choice(string.digits) for _ in range(n - 1))


def aadhaar(rng: random.Random) -> str:
    body = _digits(rng, 11, "23456789")
    n = body + verhoeff.calc_check_digit(body)
    return f"{n[:4]} {n[4:8]} {n[8:]}"


def cpf_(rng: random.Random) -> str:
    body = _digits(rng, 9)
    n = body + cpf._calc_check_digits(body)
    return f"{n[:3]}.{n[3:6]}.{n[6:9]}-{n[9:]}" if rng.random() < 0.7 else n


def cnpj_(rng: random.Random) -> str:
    body = _digits(rng, 8) + "0001"
    n = body + cnpj.calc_check_digits(body)
    return f"{n[:2]}.{n[2:5]}.{n[5:8]}/{n[8:12]}-{n[12:]}"


def nino(rng: random.Random) -> str:
    first, second = rng.choice("ABCEGHJKLMNOPRSTWXYZ"), rng.choice("ABCEGHJKLMNPRSTWXYZ")
    while first + second in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
        second = rng.choice("ABCEHJLMPRSW")
    d = _digits(rng, 6, string.digits)
    suffix = rng.choice("ABCD")
    return (
        f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {suffix}"
        if rng.random() < 0.5
        else f"{first}{second}{d}{suffix}"
    )


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def sin(rng: random.Random) -> str:
    body = _digits(rng, 8, "1234567")
    n = body + luhn.calc_check_digit(body)
    return f"{n[:3]} {n[3:6]} {n[6:]}"


def dni(rng: random.Random) -> str:
    n = rng.randint(10_000_000, 99_999_999)
    return f"{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"


def codice_fiscale(rng: random.Random) -> str:
    body = (
        "".join(rng.choice(string.ascii_uppercase) for _ in range(6))
        + f"{rng.randint(40, 99)}"
        + rng.choice("ABCDEHLMPRST")
        + f"{rng.randint(1, 28):02d}"
        + rng.choice("ABCDEFGHILM")
        + f"{rng.randint(100, 999)}"
    )
    return body + codicefiscale.calc_check_digit(body)


def steuer_id(rng: random.Random) -> str:
    while True:
        digits = list("0123456789")
        rng.shuffle(digits)
        body = digits[:9]
        body.insert(rng.randint(1, 9), body[rng.randint(0, 8)])  # one digit twice
        if body[0] == "0":
            continue
        b = "".join(body)
        n = b + mod_11_10.calc_check_digit(b)
        return f"{n[:2]} {n[2:5]} {n[5:8]} {n[8:]}"


def bsn(rng: random.Random) -> str:
    while True:
        body = _digits(rng, 8)
        total = sum((9 - i) * int(c) for i, c in enumerate(body))
        last = total % 11
        if last < 10:
            return body + str(last)


def pesel_(rng: random.Random) -> str:
    body = (
        f"{rng.randint(50, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 9999):04d}"
    )
    return body + pesel.calc_check_digit(body)


def nir(rng: random.Random) -> str:
    sex, year, month, dept = rng.choice("12"), rng.randint(50, 99), rng.randint(1, 12), rng.randint(1, 95)
    body = f"{sex}{year:02d}{month:02d}{dept:02d}{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}"
    key = 97 - int(body) % 97
    n = f"{body}{key:02d}"
    return f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}"


def personnummer(rng: random.Random) -> str:
    body = (
        f"{rng.randint(50, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    )
    return f"{body[:6]}-{body[6:]}{luhn.calc_check_digit(body)}"


def china_ric(rng: random.Random) -> str:
    region = rng.choice(["110101", "310104", "440305"])
    year, month = rng.randint(1960, 2000), rng.randint(1, 12)
    body = f"{region}{year}{month:02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check digit


def korea_rrn(rng: random.Random) -> str:
    year, month, day, sex = rng.randint(60, 99), rng.randint(1, 12), rng.randint(1, 28), rng.choice("12")
    body = f"{year:02d}{month:02d}{day:02d}{sex}{rng.randint(0, 99999):05d}"
    n = body + rrn.calc_check_digit(body)
    return f"{n[:6]}-{n[6:]}"


def tc_kimlik(rng: random.Random) -> str:
    body = _digits(rng, 9)
    return body + tckimlik.calc_check_digits(body)


def passport(rng: random.Random) -> str:
    shapes = [
        lambda: rng.choice(string.ascii_uppercase) + _digits(rng, 8, string.digits),
        lambda: _digits(rng, 9),
        lambda: (
            "".join(rng.choice(string.ascii_uppercase) for _ in range(2)) + _digits(rng, 7, string.digits)
        ),
        lambda: rng.choice("CFGHJK") + "".join(rng.choice("0123456789CFGHJKLMNPRTVWXYZ") for _ in range(8)),
    ]
    value = rng.choice(shapes)()
    return value if any(c.isdigit() for c in value) else value[:-1] + "7"


def mac(rng: random.Random) -> str:
    octets = [f"{rng.randint(0, 255):02x}" for _ in range(6)]
    octets[0] = f"{rng.randint(0, 9)}{octets[0][1]}"
    style = rng.random()
    if style < 0.4:
        return ":".join(octets).upper()
    if style < 0.8:
        return "-".join(octets)
    joined = "".join(octets)
    return f"{joined[:4]}.{joined[4:8]}.{joined[8:]}"


def _b62(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def stripe(rng: random.Random) -> str:
    kind = rng.choice(["whsec_", "pk_live_", "rk_live_", "sk_live_"])
    return kind + _b62(rng, 32 if kind == "whsec_" else 99)


def github_fine(rng: random.Random) -> str:
    return f"github_pat_11{_b62(rng, 20)}_{_b62(rng, 59)}"


def google_key(rng: random.Random) -> str:
    return "AIza" + "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(35))


def slack(rng: random.Random) -> str:
    return f"xoxb-{_digits(rng, 12)}-{_digits(rng, 13)}-{_b62(rng, 24)}"


def jwt(rng: random.Random) -> str:
    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return (
        f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'sub': _digits(rng, 8), 'name': 'x'})}.{_b62(rng, 43)}"
    )


def private_key(rng: random.Random) -> str:
    body = "\n".join(_b62(rng, 70) for _ in range(4))
    return f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----"


def iban_world(rng: random.Random) -> str:
    country, length = rng.choice([("BR", 29), ("TR", 26), ("PL", 28), ("FR", 27), ("SA", 24)])
    bban = _digits(rng, length - 4, string.digits)
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    return f"{country}{check:02d}{bban}"


_LISTS: dict[str, dict[str, list[str]]] = {
    "EMAIL_UNICODE": {
        "dev": [
            "josé.müller@bücher.de",
            "用户@例子.中国",
            "почта@пример.рф",
            "ayşe.yılmaz@örnek.com.tr",
            "δοκιμή@παράδειγμα.ελ",
            "françois.lefèvre@société.fr",
            "राहुल@उदाहरण.भारत",
            "naïve＠exemple.fr",
        ],
        "heldout": ["björn.ångström@exempel.se", "山田太郎@例え.jp", "điệp.nguyễn@vídụ.vn", "zoë@straße.de"],
    },
    "ADDRESS_WORLD": {
        "dev": [
            "ul. Marszałkowska 84/92, 00-514 Warszawa",
            "ул. Тверская, д. 13, кв. 5",
            "Οδός Ερμού 15, Αθήνα 105 63",
            "Atatürk Caddesi No: 25, Kadıköy",
            "Andrássy út 60, 1062 Budapest",
            "Mannerheimintie 12 B 5, 00100 Helsinki",
            "北京市朝阳区建国路88号",
            "東京都千代田区丸の内1-9-1",
            "서울특별시 강남구 테헤란로 152",
            "شارع الملك فهد 123",
            "Jl. Sudirman No. 5, Jakarta",
            "123 Đường Lê Lợi, Quận 1",
            "Karl Johans gate 22, 0159 Oslo",
            "Calea Victoriei 12, București",
        ],
        "heldout": [
            "вул. Хрещатик, 22, Київ",
            "上海市浦东新区世纪大道100号",
            "Bağdat Caddesi No: 112, İstanbul",
            "Storgatan 5, 111 22 Stockholm",
            "רחוב הרצל 12, תל אביב",
            "Rua Augusta 274, 1100-053 Lisboa",
        ],
    },
    "PERSON_WORLD": {
        "dev": [
            "Nguyễn Văn An",
            "Oluwaseun Adeyemi",
            "Aigerim Nurlanovna",
            "王秀英",
            "김민준",
            "佐藤健一",
            "राहुल शर्मा",
            "محمد أحمد",
            "Mehmet Yılmaz",
            "Κώστας Παπαδόπουλος",
            "Giorgi Beridze",
            "Сергей Смирнов",
        ],
        "heldout": ["Chidinma Okonkwo", "Trần Thị Mai", "李娜", "박서준", "Dmitri Volkov", "Zeynep Kaya"],
    },
}

_TEMPLATES_DEV: dict[str, list[tuple[str, str]]] = {
    "AADHAAR": [("en", "My Aadhaar number is {v}, please update the KYC."), ("hi", "मेरा आधार नंबर {v} है।")],
    "CPF": [("pt", "Meu CPF é {v}, pode conferir?"), ("en", "Brazilian CPF: {v}")],
    "CNPJ": [("pt", "O CNPJ da empresa é {v}."), ("en", "Invoice the company with CNPJ {v}.")],
    "UK_NINO": [("en", "My national insurance number is {v}."), ("en", "NI number {v} - is that right?")],
    "US_SSN": [("en", "Her SSN is {v}, don't share it."), ("es", "Mi número de seguro social es {v}.")],
    "CA_SIN": [("fr", "Mon numéro d'assurance sociale (NAS/SIN) est {v}."), ("en", "SIN: {v}")],
    "ES_DNI": [("es", "Mi DNI es {v} y vivo en Madrid."), ("en", "Spanish ID {v}")],
    "IT_CF": [("it", "Il mio codice fiscale è {v}."), ("en", "Codice fiscale {v} for the contract.")],
    "DE_STEUER_ID": [("de", "Meine Steuer-ID lautet {v}."), ("de", "Steueridentifikationsnummer: {v}")],
    "NL_BSN": [("nl", "Mijn BSN is {v}."), ("en", "Dutch burgerservicenummer {v}")],
    "PL_PESEL": [("pl", "Mój PESEL to {v}."), ("en", "PESEL {v} belongs to my mother.")],
    "FR_NIR": [("fr", "Mon numéro de sécurité sociale est {v}."), ("fr", "NIR : {v}")],
    "SE_PERSONNUMMER": [("sv", "Mitt personnummer är {v}."), ("en", "Swedish personnummer {v}")],
    "CN_RIC": [("zh", "我的身份证号码是{v}。"), ("en", "Chinese ID {v}")],
    "KR_RRN": [("ko", "제 주민등록번호는 {v}입니다."), ("en", "Korean RRN {v}")],
    "TR_TCKIMLIK": [("tr", "TC kimlik numaram {v}."), ("en", "Turkish ID (TC Kimlik No) {v}")],
    "PASSPORT": [
        ("en", "My passport number is {v}."),
        ("de", "Reisepassnummer: {v}"),
        ("fr", "Numéro de passeport : {v}"),
        ("es", "Pasaporte n.º {v}"),
        ("zh", "护照号码：{v}"),
        ("ru", "Номер паспорта {v}"),
    ],
    "DOB": [
        ("en", "I was born on {v}."),
        ("de", "Geburtsdatum: {v}"),
        ("fr", "Née le {v} à Lyon."),
        ("es", "Fecha de nacimiento: {v}"),
        ("ja", "生年月日：{v}"),
        ("ru", "Дата рождения: {v}"),
    ],
    "MAC": [("en", "The laptop's MAC address is {v}."), ("de", "MAC-Adresse {v} blockieren.")],
    "EMAIL_UNICODE": [("en", "Write to {v} tomorrow."), ("fr", "Écrivez-moi à {v} s'il vous plaît.")],
    "STRIPE": [("en", "Here's our Stripe key {v} for the webhook."), ("pt", "A chave {v} está no .env")],
    "GITHUB_FINE": [("en", "export GH_TOKEN={v}"), ("de", "Das Token {v} läuft nie ab.")],
    "GOOGLE_API": [("en", "maps key: {v}"), ("es", "La clave de Google es {v}")],
    "SLACK": [("en", "Bot token {v} posts to #ops."), ("ja", "Slackのトークンは{v}です。")],
    "JWT": [("en", "Authorization token: {v}"), ("fr", "Le jeton {v} a expiré.")],
    "PRIVATE_KEY": [("en", "my key:\n{v}\nwhy does ssh refuse it?")],
    "IBAN_WORLD": [("tr", "IBAN numaram {v}."), ("pt", "Transfira para {v}, por favor.")],
    "ADDRESS_WORLD": [("any", "Address: {v}."), ("en", "Please ship it to {v} before Friday.")],
    "PERSON_WORLD": [("en", "I met {v} at the conference yesterday."), ("any", "Contact: {v}, phone later.")],
}
_TEMPLATES_HELDOUT: dict[str, list[tuple[str, str]]] = {
    "AADHAAR": [("en", "aadhar {v} (linked to my bank)")],
    "CPF": [("pt", "segue o cpf: {v}")],
    "CNPJ": [("pt", "CNPJ nº {v}")],
    "UK_NINO": [("en", "NINO {v}, employer asked for it")],
    "US_SSN": [("en", "social security # {v}")],
    "CA_SIN": [("en", "my social insurance number {v}")],
    "ES_DNI": [("es", "con DNI {v}, mayor de edad")],
    "IT_CF": [("it", "C.F.: {v}")],
    "DE_STEUER_ID": [("de", "Steuer-ID {v} (siehe Bescheid)")],
    "NL_BSN": [("nl", "BSN-nummer: {v}")],
    "PL_PESEL": [("pl", "nr PESEL {v}")],
    "FR_NIR": [("fr", "n° de sécu {v}")],
    "SE_PERSONNUMMER": [("sv", "personnr {v}")],
    "CN_RIC": [("zh", "身份证：{v}")],
    "KR_RRN": [("ko", "주민번호 {v}")],
    "TR_TCKIMLIK": [("tr", "kimlik no: {v}")],
    "PASSPORT": [("it", "passaporto n. {v}"), ("ko", "여권번호는 {v}"), ("nl", "paspoortnummer {v}")],
    "DOB": [("it", "nato il {v}"), ("pt", "nascida em {v}"), ("pl", "data urodzenia: {v}")],
    "MAC": [("en", "whitelist {v} on the router")],
    "EMAIL_UNICODE": [("en", "mail me: {v}")],
    "STRIPE": [("en", "STRIPE_KEY={v}")],
    "GITHUB_FINE": [("en", "token: {v}")],
    "GOOGLE_API": [("en", "?key={v}&q=x")],
    "SLACK": [("en", "SLACK_BOT_TOKEN={v}")],
    "JWT": [("en", "Bearer {v}")],
    "PRIVATE_KEY": [("en", "{v}")],
    "IBAN_WORLD": [("fr", "RIB / IBAN : {v}")],
    "ADDRESS_WORLD": [("any", "Meet me at {v}")],
    "PERSON_WORLD": [("any", "Signed, {v}")],
}

_GENERATORS: dict[str, Gen] = {
    "AADHAAR": aadhaar, "CPF": cpf_, "CNPJ": cnpj_, "UK_NINO": nino, "US_SSN": ssn, "CA_SIN": sin,
    "ES_DNI": dni,
    "IT_CF": codice_fiscale, "DE_STEUER_ID": steuer_id, "NL_BSN": bsn, "PL_PESEL": pesel_, "FR_NIR": nir,
    "SE_PERSONNUMMER": personnummer, "CN_RIC": china_ric, "KR_RRN": korea_rrn, "TR_TCKIMLIK": tc_kimlik,
    "PASSPORT": passport, "MAC": mac, "STRIPE": stripe, "GITHUB_FINE": github_fine, "GOOGLE_API": google_key,
    "SLACK": slack, "JWT": jwt, "PRIVATE_KEY": private_key, "IBAN_WORLD": iban_world,
}  # fmt: skip


def _dob(rng: random.Random, lang: str) -> str:
    y, m, d = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
    months = {
        "en": "January February March April May June July August September October November December",
        "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
        "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
        "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
        "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
        "pt": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
        "ru": "января февраля марта апреля мая июня июля августа сентября октября ноября декабря",
        "pl": "stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października listopada"
        " grudnia",
    }
    if lang in ("ja", "zh", "ko"):
        return f"{y}年{m}月{d}日"
    word = months.get(lang, months["en"]).split()[m - 1]
    style = rng.random()
    if style < 0.3:
        return f"{d:02d}/{m:02d}/{y}" if lang != "de" else f"{d:02d}.{m:02d}.{y}"
    if lang == "en":
        return f"{word} {d}, {y}" if style < 0.65 else f"{d} {word} {y}"
    if lang in ("es", "pt"):
        return f"{d} de {word} de {y}"
    if lang == "de":
        return f"{d}. {word} {y}"
    return f"{d} {word} {y}"


def build() -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    for split, templates, seed, per_kind in (
        ("dev", _TEMPLATES_DEV, 20, 4),
        ("heldout", _TEMPLATES_HELDOUT, 77, 2),
    ):
        rng = random.Random(seed)
        for kind, forms in templates.items():
            if kind in _LISTS:
                values = list(_LISTS[kind][split])
            else:
                values = []
            for i in range(max(per_kind, len(values))):
                lang, template = forms[i % len(forms)]
                if kind == "DOB":
                    value = _dob(rng, lang)
                elif kind in _GENERATORS:
                    value = _GENERATORS[kind](rng)
                else:
                    value = values[i]
                records.append(
                    {
                        "kind": kind,
                        "value": value,
                        "text": template.format(v=value),
                        "lang": lang,
                        "split": split,
                    }
                )
    return records


if __name__ == "__main__":
    DATA.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in build()), encoding="utf-8")
    print(f"wrote {DATA}")
