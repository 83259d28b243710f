"""Accounts: names in many scripts (and hostile ones), emails on example domains, locales and
countries; rendered as JSON lines or an Arrow table.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forensics.sample.constants import SPECIAL_BASE, Arr
from forensics.sample.ids import Keys, join_text, mix64, prefixed_hex, quote_json, take_pool
from forensics.sample.render import optional_field

_SCRIPTS: dict[str, tuple[list[str], list[str], str, list[tuple[str, str]]]] = {
    # script: (given names, family names, format, [(locale, country)])
    "latin": (
        [
            "Anna",
            "Lukas",
            "Sofia",
            "Mateo",
            "Emma",
            "Noah",
            "Chloé",
            "José",
            "Zoë",
            "François",
            "Björn",
            "Ingrid",
            "Łukasz",
            "Małgorzata",
            "Siobhán",
            "Øyvind",
            "Ana",
            "Kwame",
            "Aroha",
            "Niamh",
            "Jürgen",
            "Inês",
            "Tomás",
            "Aylin",
        ],
        [
            "Müller",
            "García",
            "Smith",
            "O'Brien",
            "Dvořák",
            "Nowak",
            "Rossi",
            "Jensen",
            "Silva",
            "Martin",
            "Kowalski",
            "Ó Súilleabháin",
            "Van der Berg",
            "Öztürk",
            "Mensah",
            "Ngata",
            "Fernández",
            "Lefèvre",
        ],
        "{g} {f}",
        [
            ("en-US", "US"),
            ("en-GB", "GB"),
            ("de-DE", "DE"),
            ("fr-FR", "FR"),
            ("es-MX", "MX"),
            ("pt-BR", "BR"),
            ("pl-PL", "PL"),
            ("tr-TR", "TR"),
        ],
    ),
    "arabic": (
        ["محمد", "فاطمة", "أحمد", "ليلى", "يوسف", "مريم"],
        ["العلي", "حداد", "الخطيب", "منصور"],
        "{g} {f}",
        [("ar-EG", "EG"), ("ar-SA", "SA"), ("ar-MA", "MA")],
    ),
    "hebrew": (
        ["נועה", "דוד", "תמר", "יונתן", "שירה"],
        ["כהן", "לוי", "מזרחי", "פרץ"],
        "{g} {f}",
        [("he-IL", "IL")],
    ),
    "chinese": (
        ["伟", "芳", "娜", "强", "静", "磊"],
        ["王", "李", "张", "刘", "陈"],
        "{f}{g}",
        [("zh-CN", "CN"), ("zh-TW", "TW")],
    ),
    "japanese": (
        ["さくら", "翔太", "陽菜", "蓮"],
        ["佐藤", "鈴木", "高橋", "田中"],
        "{f} {g}",
        [("ja-JP", "JP")],
    ),
    "korean": (
        ["민준", "서연", "지호", "하은"],
        ["김", "이", "박", "최"],
        "{f}{g}",
        [("ko-KR", "KR")],
    ),
    "devanagari": (
        ["अनन्या", "आरव", "प्रिया", "विहान"],
        ["शर्मा", "वर्मा", "पटेल"],
        "{g} {f}",
        [("hi-IN", "IN")],
    ),
    "cyrillic": (
        ["Алексей", "Мария", "Дмитрий", "Олена"],
        ["Иванова", "Петров", "Шевченко"],
        "{g} {f}",
        [("ru-RU", "RU"), ("uk-UA", "UA")],
    ),
    "greek": (
        ["Ελένη", "Γιώργος", "Σοφία"],
        ["Παπαδοπούλου", "Νικολάου"],
        "{g} {f}",
        [("el-GR", "GR")],
    ),
    "thai": (["สมชาย", "สุดา", "อนันต์"], ["ใจดี", "ศรีสุข"], "{g} {f}", [("th-TH", "TH")]),
    "emoji": (
        ["Mia 🌸", "🦊", "Leo 🦁", "Ravi 🇮🇳", "👩🏽‍💻 Dev"],
        ["Fox", "Park", "Sun ☀️", ""],
        "{g} {f}",
        [("en-US", "US"), ("en-IN", "IN"), ("ko-KR", "KR")],
    ),
    # Decomposed (NFD) letters: the bytes must survive unchanged, not be normalised.
    "combining": (
        ["Zoe\u0308", "Jose\u0301", "Ame\u0301lie", "Nguye\u0302\u0303n Va\u0306n"],
        ["Bronte\u0308", "Nu\u0303n\u0303ez", "An", "Lefe\u0300vre"],
        "{g} {f}",
        [("fr-FR", "FR"), ("vi-VN", "VN"), ("es-ES", "ES")],
    ),
}
_SCRIPT_P = {
    "latin": 0.5,
    "arabic": 0.08,
    "hebrew": 0.05,
    "chinese": 0.07,
    "japanese": 0.03,
    "korean": 0.02,
    "devanagari": 0.06,
    "cyrillic": 0.06,
    "greek": 0.03,
    "thai": 0.03,
    "emoji": 0.03,
    "combining": 0.04,
}
# Names that are formulas, markup or control characters to spreadsheets and terminals.
HOSTILE_NAMES = (
    '=HYPERLINK("http://example.com/refund","Claim refund")',
    "+1 555 0100",
    "@SUM(A1)",
    "-2+3",
    "\tTabbed Name",
    "[link=https://example.com]Sam[/link] \x1b[31mRed\x1b[0m",
    'Smith, "Jr."\nSecond line',
)
_DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "post.example")


def _name_pool() -> tuple[list[str], list[str], list[str], Arr]:
    names, locales, countries, weights = [], [], [], []
    for script, (given, family, fmt, places) in _SCRIPTS.items():
        combos = [fmt.format(g=g, f=f).strip() for g in given for f in family]
        for i, name in enumerate(combos):
            loc, country = places[i % len(places)]
            names.append(name)
            locales.append(loc)
            countries.append(country)
            weights.append(_SCRIPT_P[script] / len(combos))
    w = np.array(weights)
    return names, locales, countries, w / w.sum()


_NAMES, _LOCALES, _COUNTRIES, _NAME_P = _name_pool()


def make_accounts(
    rng: np.random.Generator, keys: Keys, users: Arr, hostile: dict[int, str]
) -> dict[str, Any]:
    """Account columns (Python/Arrow) for user gids; `hostile` pins names of some gids."""
    n = len(users)
    pick = rng.choice(len(_NAMES), n, p=_NAME_P)
    names = take_pool(_NAMES, pick)
    if hostile:
        pos = np.flatnonzero(np.isin(users, np.array(list(hostile))))
        lst = names.to_pylist()
        for i in pos:
            lst[i] = hostile[int(users[i])]
        names = pa.array(lst, pa.large_string())
    local = prefixed_hex("", mix64(users, keys.email))
    local = pc.utf8_slice_codeunits(local, 0, 10)
    domain = take_pool(_DOMAINS, rng.integers(0, len(_DOMAINS), n))
    email = join_text(local, "@", domain)
    return {
        "user": users,
        "email": email,
        "has_email": rng.random(n) >= 0.03,
        "name": names,
        "has_name": rng.random(n) >= 0.01,
        "locale": take_pool(_LOCALES, pick),
        "has_locale": rng.random(n) >= 0.05,
        "country": take_pool(_COUNTRIES, pick),
        "has_country": rng.random(n) >= 0.05,
    }


def _json_string_pool(values: pa.Array) -> pa.Array:
    """JSON string literals of arbitrary text (escaped like json.dumps)."""
    uniq = pc.unique(values)
    enc = pa.array([json.dumps(v, ensure_ascii=False) for v in uniq.to_pylist()], pa.large_string())
    return enc.take(pc.index_in(values, uniq))


def account_lines(acc: dict[str, Any], idx: Arr, keys: Keys, rng: np.random.Generator) -> pa.Array:
    users = acc["user"][idx]
    ut = keys.user_text(users)
    num = keys.legacy_user_mask(users) & ((rng.random(len(idx)) < 0.5) | (users >= SPECIAL_BASE))
    sel = pa.array(idx)
    return join_text(
        '{"user_id":',
        pc.if_else(pa.array(num), ut, quote_json(ut)),
        # Emails are ASCII only: quoting needs no escapes.
        optional_field("email", acc["has_email"][idx], quote_json(acc["email"].take(sel))),
        optional_field("name", acc["has_name"][idx], _json_string_pool(acc["name"].take(sel))),
        optional_field("locale", acc["has_locale"][idx], quote_json(acc["locale"].take(sel))),
        optional_field("country", acc["has_country"][idx], quote_json(acc["country"].take(sel))),
        "}",
    )


def account_table(acc: dict[str, Any], idx: Arr, keys: Keys) -> pa.Table:
    sel = pa.array(idx)

    def col(name: str) -> pa.Array:
        return pc.if_else(pa.array(acc[f"has_{name}"][idx]), acc[name].take(sel), None).cast(
            pa.string()
        )

    return pa.table(
        {
            "user_id": keys.user_text(acc["user"][idx]).cast(pa.string()),
            "email": col("email"),
            "name": col("name"),
            "locale": col("locale"),
            "country": col("country"),
        }
    )
