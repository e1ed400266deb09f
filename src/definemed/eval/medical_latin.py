"""Medical Latin and clinical shorthand, masked before language identification.

German clinical writing is full of Latin terms ("Ulcus duodeni", "Status post", "Situs inversus",
"Diabetes mellitus", "Sectio caesarea") and abbreviations ("p.o.", "i.v.", "Z. n."). Language
identifiers read them as Italian, Spanish, English or Dutch, so a German sentence with two Latin
terms may be flagged as foreign. These words are evidence of medicine, not of a language: we
remove them before identifying the language (`mask`), and a sentence with too little left is
undecidable. Names of diseases ("Basedow", "Crohn") stay: lingua handles them in context.
"""

from __future__ import annotations

import re

LATIN_TERMS = """
abdomen acuta acutus ad adipositas aeruginosa ani anterior aorta aortae angina arteria arteriosus arthrosis
aurium bronchiale bronchialis caesarea carcinoma centralis cerebri cervix chronica chronicus colli congenita
cordis coronaria cruris cum cutis deformans diabetes diffusa dolor dorsalis duodeni duplex et exitus externa
externus extremitas femoris fistula fractura genus glandula hallux helicobacter hernia herpes incarcerata
inferior inguinalis insipidus integrum interna internus intestinalis inversus ileus lateralis latens lege letalis
lobus loco lues magna materia media medialis mellitus morbus nervus oris ophthalmicus os partialis pectoris pedis
per pes planus plexus posterior post profunda pruritus pulmonis pylori radii recidivans restitutio sectio
seropositiva simplex sine sinistra situs status struma superficialis superior totalis typico ulcus urethrae uteri
valgus varus vena venosum ventriculi vera vulgaris zoster
""".split()
# "in situ" only as a phrase: "in" alone is German (and English, Dutch, Italian) too.
_PHRASES = (r"in\s+situ", r"in\s+toto", r"per\s+os", r"lege\s+artis")
# Dotted clinical abbreviations: p.o., i.v., s.c., i.m., Z. n., V. a., St. p., o. B.
_ABBREV = r"(?<!\w)(?:[A-Za-zÄÖÜäöü]{1,2}\.\s?){1,3}(?![\w])"
_MASK = re.compile("|".join(_PHRASES) + "|" + _ABBREV + "|" +
                   r"\b(?:" + "|".join(sorted(LATIN_TERMS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")
MIN_LEFT = 3  # words that must remain for a language decision (as few as 2 mislead lingua: "Basedow mit" → en)


def mask(sentence: str) -> str:
    """The sentence without medical Latin terms and dotted clinical abbreviations."""
    return re.sub(r"\s{2,}", " ", _MASK.sub(" ", sentence)).strip()


def decidable(sentence: str) -> bool:
    """Enough non-Latin words left to identify a language."""
    return len(_WORD.findall(mask(sentence))) >= MIN_LEFT
