"""PII scrubbing for German web text: personal data is replaced by typed placeholders.

    type        placeholder       what is found
    EMAIL       <EMAIL>           datatrove's PIIFormatter e-mail regex
    PHONE       <TELEFON>         +49/+43/+41… and national numbers with an area code (0…), extensions
    IBAN        <IBAN>            country code + check digits + BBAN, only if the mod-97 checksum holds
    IP          <IP>              public IPv4 (datatrove's regex and validator) and public IPv6
    KVNR        <KVNR>            Krankenversichertennummer: capital letter + 9 digits with a valid
                                  check digit, or any such token right after "Versichertennummer"/"KVNR"
    ADDRESS     <ADRESSE>         street + house number (+ postcode + city), or postcode + city on
                                  its own line / after a comma
    BIRTHDATE   <GEBURTSDATUM>    a date after "geb.", "geboren (am)", "Geburtsdatum", "*", or right
                                  after "Herr/Frau/Patient(in) First Last"

Kept on purpose (medical text is full of numbers that look like personal data):
- dosages and schedules ("5 mg 1-0-1", "2 x 500 mg"), ICD-10/11 codes, PZN, lab values and ranges,
  blood pressure, years, and dates that are not next to a name or a birth keyword;
- private-network IPs (192.168.x.x: router manuals, not a person);
- public service numbers (KEEP_NUMBERS): emergency and on-call numbers (112, 110, 116117, 144,
  1450, 1455, 19222; short numbers never match the phone pattern anyway), the harmonised European
  116xxx helplines, poison-information centres, and every toll-free 0800/0801 number — those
  belong to organisations (TelefonSeelsorge, public hotlines), never to a private person.
  `PIIConfig.keep_numbers` adds more.
The placeholders keep the text readable for language modelling and count per type in datatrove's
stats as `pii_<TYPE>`.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from typing import Iterable, NamedTuple

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.formatters.pii import PIIFormatter, public_ip_validator
from pydantic import Field, field_validator

from definemed.config import StrictModel

PLACEHOLDERS = {"EMAIL": "<EMAIL>", "PHONE": "<TELEFON>", "IBAN": "<IBAN>", "IP": "<IP>", "KVNR": "<KVNR>",
                "ADDRESS": "<ADRESSE>", "BIRTHDATE": "<GEBURTSDATUM>"}
PII_TYPES = tuple(PLACEHOLDERS)
KEEP_NUMBERS = (
    "116117", "116 000", "116 006", "116 111", "116 123",        # on-call service, EU helplines
    "030 19240", "0228 19240", "0361 730730", "06131 19240", "0761 19240", "089 19240",  # Giftnotrufe DE
    "0551 19240", "0911 398 2451", "06841 19240",
    "+43 1 406 43 43", "01 406 43 43", "+41 44 251 51 51",      # poison information AT, CH
)

# datatrove's e-mail and IPv4 patterns, taken from its formatter so the two never drift apart.
_DT = PIIFormatter()
_EMAIL = _DT.emails_replacer.regex
_IPV4 = re.compile(r"(?<![\d.])" + _DT.ip_replacer.regex.pattern + r"(?![\d]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{3,39}(?![\w:])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){2,8}\b")
_IBAN_LENGTH = {"DE": 22, "AT": 20, "CH": 21, "LI": 21, "LU": 20, "NL": 18, "BE": 16, "FR": 27, "IT": 27}
_KVNR = re.compile(r"\b[A-Z]\d{9}\b")
_KVNR_LABEL = re.compile(r"(?:versicherten|kvnr|versicherungs)[\w.-]*:?\s*$", re.IGNORECASE)
# Phone: +CC or a 0-prefixed area code, then digit groups separated by single spaces, "/", "-",
# "–"; an extension "-0" is part of the number. Newlines end a number (lab tables follow lines).
_SEP = r"(?:[ \u00a0]?[/\-–][ \u00a0]?|[ \u00a0])"
_PHONE = re.compile(r"(?<![\w+/.,])(?:\+\d{2,3}(?:[ \u00a0]?\(0\))?|\(0\d{2,5}\)|0\d{2,14})"
                    r"(?:" + _SEP + r"\d{1,8}){0,6}(?!\w|[.,]\d)")
_PHONE_LABEL = re.compile(r"(?:tel|telefon|fax|mobil|handy|ruf|anrufen|erreichbar|☎)[\w.:]*\s*$", re.IGNORECASE)
_NOT_PHONE_LABEL = re.compile(r"(?:pzn|nr|art|best|ik|bsnr|lanr)[.:]?\s*$", re.IGNORECASE)

_UPPER = r"[A-ZÄÖÜ]"
_NAME = r"[A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ][a-zäöüß]+)?"
_STREET_SUFFIX = (r"(?i:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad|"
                  r"markt|vorstadt|graben|kai|zeile|promenade|stieg|wall)")
_STREET = (r"(?!(?:Bundes|Staats|Kreis)stra)"  # road numbers, not addresses: "Bundesstraße 215"
           rf"(?:{_UPPER}[\wäöüß.-]*{_STREET_SUFFIX}"                     # Hainstraße, Karl-Heine-Straße
           rf"|{_UPPER}[\wäöüß-]+(?:er|e|es)? (?:Straße|Strasse|Str\.|Allee|Weg|Platz|Ring|Damm|Ufer|Gasse|Chaussee))")
_STREET_PREP = rf"(?:Am|An der|An den|Im|In der|Auf der|Auf dem|Zum|Zur|Unter den) {_NAME}"  # "Am Lindenhof"
_HOUSE = r"\d{1,3}(?: ?[a-zA-Z])?(?: ?[-–/] ?\d{1,3}[a-z]?)?\b"
_POSTCODE_CITY = rf"(?:[A-Z]{{1,2}}-)?\d{{4,5}} {_NAME}(?: (?:im|am|an der|in der|ob der) {_NAME}|/{_NAME})?"
_TO_CITY = r"(?:,? | · | \| )"
_ADDRESS_FULL = re.compile(rf"\b{_STREET} {_HOUSE}(?:{_TO_CITY}{_POSTCODE_CITY})?")
# "Am Lindenhof 9" reads like "In der Regel 5": such streets only count with postcode and city.
_ADDRESS_PREP = re.compile(rf"\b{_STREET_PREP} {_HOUSE}{_TO_CITY}{_POSTCODE_CITY}")
# Postcode + city without a street only in address layout: at a line start or after a separator.
_ADDRESS_PLZ = re.compile(rf"(?:(?<=\n)|(?<=^)|(?<=, )|(?<=· )|(?<=D-))\d{{5}} {_NAME}"
                          r"(?=[ \t]*(?:$|\n|,|\)|·|\|))", re.MULTILINE)
_DATE = (r"(?:\d{1,2}\.\s?\d{1,2}\.\s?(?:19|20)?\d{2}|\d{1,2}\. (?:Januar|Februar|März|April|Mai|Juni|Juli|"
         r"August|September|Oktober|November|Dezember) (?:19|20)\d{2}|(?:19|20)\d{2}-\d{2}-\d{2})(?!\d)")
_BIRTH_KEY = re.compile(r"(?:\bgeb\.|\bgeboren(?: am)?|\bGeburtsdatum|\bGeb\.-?(?:Dat\.|Datum)|(?<![^\s(])\*)"
                        rf"[:,]?\s?\(?({_DATE})", re.IGNORECASE)
_BIRTH_NAME = re.compile(rf"(?:Herr|Frau|Patient(?:in)?:?)\s+(?:Dr\. (?:med\. )?)?{_NAME}(?: {_NAME})?,?\s\(?({_DATE})")


class Span(NamedTuple):
    start: int
    end: int
    type: str


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _canonical_phone(s: str) -> str:
    """Digits of a number in national form, so '+43 1 406 43 43' and '01 406 43 43' compare equal."""
    d = _digits(s)
    if s.strip().startswith("+") or d.startswith("00"):
        d = d.lstrip("0")
        for cc in ("49", "43", "41"):
            if d.startswith(cc):
                return "0" + d[len(cc):].lstrip("0")
    return d


def iban_valid(candidate: str) -> bool:
    s = candidate.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s) or len(s) != _IBAN_LENGTH.get(s[:2], len(s)):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def kvnr_valid(candidate: str) -> bool:
    """The official check: the letter becomes its two-digit position (A=01 … Z=26), the first ten
    digits are weighted 1,2,1,2,…, two-digit products are replaced by their digit sum, and the
    sum mod 10 must equal the last digit."""
    if not re.fullmatch(r"[A-Z]\d{9}", candidate):
        return False
    digits = f"{ord(candidate[0]) - 64:02d}" + candidate[1:9]
    total = 0
    for i, ch in enumerate(digits):
        p = int(ch) * (1 if i % 2 == 0 else 2)
        total += p // 10 + p % 10
    return total % 10 == int(candidate[9])


def _ibans(text: str):
    for m in _IBAN.finditer(text):
        groups = re.findall(r" ?[A-Z0-9]{1,4}", m.group(0)[4:])
        for k in range(len(groups), 1, -1):  # longest valid prefix: "… 12 BIC" must not spoil it
            cand = m.group(0)[:4] + "".join(groups[:k])
            if iban_valid(cand):
                yield m.start(), m.start() + len(cand)
                break


def _phones(text: str, keep: frozenset[str]):
    # Digit groups of an IBAN-shaped string with a wrong checksum are not a phone number either.
    ibanlike = [m.span() for m in _IBAN.finditer(text)]
    for m in _PHONE.finditer(text):
        if any(a <= m.start() < b for a, b in ibanlike):
            continue
        s = m.group(0).rstrip(" -–/")
        d = _digits(s)
        before = text[max(0, m.start() - 25):m.start()]
        if not 6 <= len(d) <= 15 or _NOT_PHONE_LABEL.search(before):
            continue
        if s.startswith("0") and not re.search(r"\D", s) and not _PHONE_LABEL.search(before):
            continue  # a bare 0-prefixed digit run (PZN, file number) is a phone only after "Tel."
        canon = _canonical_phone(s)
        if canon in keep or canon.startswith(("0800", "0801")) or canon.startswith("116"):
            continue
        yield m.start(), m.start() + len(s)


def _ipv6(text: str):
    for m in _IPV6.finditer(text):
        try:
            if ipaddress.IPv6Address(m.group(0)).is_global:
                yield m.span()
        except ValueError:
            continue


def find_pii(text: str, types: Iterable[str] = PII_TYPES, keep_numbers: Iterable[str] = ()) -> list[Span]:
    """Non-overlapping PII spans, sorted. Earlier types win an overlap (an IBAN's digit groups
    must not become a phone number, an e-mail's host not an address)."""
    types = set(types)
    keep = frozenset(_canonical_phone(n) for n in (*KEEP_NUMBERS, *keep_numbers))
    found: list[Span] = []

    def add(kind: str, spans):
        if kind not in types:
            return
        for start, end in spans:
            if all(end <= s.start or start >= s.end for s in found):
                found.append(Span(start, end, kind))

    add("EMAIL", (m.span() for m in _EMAIL.finditer(text)))
    add("IBAN", _ibans(text))
    add("IP", (m.span() for m in _IPV4.finditer(text) if public_ip_validator(m.group(0))))
    add("IP", _ipv6(text))
    add("KVNR", (m.span() for m in _KVNR.finditer(text)
                 if kvnr_valid(m.group(0)) or _KVNR_LABEL.search(text[max(0, m.start() - 30):m.start()])))
    add("BIRTHDATE", (m.span(1) for rx in (_BIRTH_KEY, _BIRTH_NAME) for m in rx.finditer(text)))
    add("ADDRESS", (m.span() for rx in (_ADDRESS_FULL, _ADDRESS_PREP, _ADDRESS_PLZ) for m in rx.finditer(text)))
    add("PHONE", _phones(text, keep))
    return sorted(found)


def scrub(text: str, types: Iterable[str] = PII_TYPES, keep_numbers: Iterable[str] = ()) -> tuple[str, Counter]:
    """The text with every PII span replaced by its placeholder, and the counts per type."""
    spans = find_pii(text, types, keep_numbers)
    parts, last = [], 0
    for s in spans:
        parts += [text[last:s.start], PLACEHOLDERS[s.type]]
        last = s.end
    parts.append(text[last:])
    return "".join(parts), Counter(s.type for s in spans)


class PIIConfig(StrictModel):
    enabled: bool = True
    types: list[str] = Field(default_factory=lambda: list(PII_TYPES))
    keep_numbers: list[str] = Field(default_factory=list)  # extra phone numbers never redacted

    @field_validator("types")
    @classmethod
    def _known(cls, types: list[str]) -> list[str]:
        if unknown := set(types) - set(PII_TYPES):
            raise ValueError(f"unknown PII types {sorted(unknown)} (known: {', '.join(PII_TYPES)})")
        return types


class PIIScrubber(PipelineStep):
    """Replaces personal data in `doc.text`; counts `pii_<TYPE>` and `pii_documents` (docs changed)."""

    name = "🔏 PII scrubber"
    type = "✂️ - FORMAT"

    def __init__(self, cfg: PIIConfig | None = None):
        super().__init__()
        self.cfg = cfg or PIIConfig()

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                doc.text, counts = scrub(doc.text, self.cfg.types, self.cfg.keep_numbers)
            if counts:
                self.stat_update("pii_documents")
                for kind, n in counts.items():
                    self.stat_update(f"pii_{kind}", value=n)
            yield doc
