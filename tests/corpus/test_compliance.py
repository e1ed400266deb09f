"""Compliance blocks: PII scrubbing, opt-out lists, benchmark decontamination, the dataset card.

Measured on the sample's planted cases (labels/pii_planted.jsonl, labels/contamination_planted.jsonl)
and run inside a real datatrove executor on the sample parquet.
"""

import json

import pytest
import yaml
from datatrove.data import Document

from definemed.corpus.card import size_category, write_dataset_card
from definemed.corpus.compliance import ComplianceConfig, collect_compliance_stats, compliance_steps
from definemed.corpus.decontam import BenchmarkIndex, DecontamConfig, DecontaminationFilter, normalise
from definemed.corpus.optout import OptOutFilter, OptOutList
from definemed.corpus.pii import PLACEHOLDERS, PIIConfig, iban_valid, kvnr_valid, scrub
from definemed.corpus.pii_eval import evaluate_planted
from definemed.data import sample
from definemed.data.io import read_jsonl
from definemed.errors import UserError

# --- PII -------------------------------------------------------------------------------------------

POSITIVE = [
    ("EMAIL", "Schreiben Sie an anna.beispiel-meier@posteo.de, wir antworten.", "anna.beispiel-meier@posteo.de"),
    ("PHONE", "Termine unter 0341 / 9 11 27 40 vereinbaren.", "9 11 27 40"),
    ("PHONE", "Tel. (0911) 45 30 77-12, Fax folgt", "45 30 77-12"),
    ("PHONE", "Mobil 0176 43218895 oder", "43218895"),
    ("PHONE", "Praxis in Graz: +43 316 38 27 14.", "38 27 14"),
    ("PHONE", "Aus dem Ausland: +49 (0) 89 123 456-7", "123 456-7"),
    ("PHONE", "Telefon: 07392144", "07392144"),
    ("IBAN", "Spenden an IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX", "0532 0130"),
    ("IBAN", "Konto AT611904300234573201 bei der Bank", "AT611904300234573201"),
    ("IP", "gepostet von 93.211.48.117 am Abend", "93.211.48.117"),
    ("IP", "Zugriff von 2a02:8108:1234:5678::42 erkannt", "2a02:8108"),
    ("KVNR", "Versichertennummer K481220936, Kasse AOK", "K481220936"),
    ("KVNR", "KVNR: A123456780 (Tippfehler in der Prüfziffer)", "A123456780"),
    ("ADDRESS", "Anschrift: Hainstraße 31, 96047 Bamberg", "Hainstraße 31"),
    ("ADDRESS", "Praxis Karl-Heine-Straße 58 im Erdgeschoss", "Karl-Heine-Straße 58"),
    ("ADDRESS", "Wir sind umgezogen: Am Lindenhof 9, 31582 Nienburg", "Lindenhof 9"),
    ("ADDRESS", "Praxisgemeinschaft\n80796 München\nTelefon folgt", "80796 München"),
    ("BIRTHDATE", "Patientin Frau Waltraud Kesselring, geb. 04.11.1949, wohnhaft", "04.11.1949"),
    ("BIRTHDATE", "Er ist geboren am 5. März 1971 in Köln.", "5. März 1971"),
    ("BIRTHDATE", "Patient: Herr Bernd Ostermeier, 23.09.1957", "23.09.1957"),
]
NEGATIVE = [
    "Metformin 1000 mg 1-0-1, Ramipril 5 mg 1-0-0, Ibuprofen 2 x täglich 400 mg",
    "Diagnosen: J18.9, I10.90, E11.90; ICD-11 6B42; PZN 07392144",
    "HbA1c 6,5 % (4,0–6,0), RR 120/80 mmHg, Kalium 3,5–5,0 mmol/l, eGFR 68 ml/min/1,73 m²",
    "Notruf 112, Polizei 110, Bereitschaftsdienst 116117, TelefonSeelsorge 0800 111 0 111 oder 116 123",
    "Giftnotruf Erfurt 0361 730730, Vergiftungsinformation +43 1 406 43 43",
    "Labor vom 12.04.2024, Aufnahme am 02.02.2024, seit 2011 in Bamberg",
    "Der Router hat die Adresse 192.168.178.1 und die Version 2001:db8::1",
    "Umleitung über die Bundesstraße 215; In der Regel 5 Tage Antibiose",
    "Jährlich erkranken 12000 Menschen, davon 4500 Frauen",
    "DE89 3704 0044 0532 0130 01 ist keine gültige IBAN",  # checksum wrong: left alone
    "X123456780 ist eine Chargennummer",  # KVNR format, wrong check digit, no label
]


@pytest.mark.parametrize("kind,text,secret", POSITIVE)
def test_pii_positive(kind, text, secret):
    out, counts = scrub(text)
    assert secret not in out and counts[kind] >= 1, (out, counts)
    assert PLACEHOLDERS[kind] in out


@pytest.mark.parametrize("text", NEGATIVE)
def test_pii_negative_keeps_medical_and_public_numbers(text):
    out, counts = scrub(text)
    assert out == text and not counts


def test_checksums_and_config():
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid("DE89 3704 0044 0532 0130 01")
    assert kvnr_valid("K481220936") and not kvnr_valid("K481220937")
    assert scrub("ruf an: 030 1234567", keep_numbers=["+49 30 1234567"])[0] == "ruf an: 030 1234567"
    assert scrub("a@b.de und 030 1234567", types=["EMAIL"])[0] == "<EMAIL> und 030 1234567"
    with pytest.raises(ValueError, match="unknown PII types"):
        PIIConfig(types=["EMAIL", "SHOE_SIZE"])


def test_planted_pii_targets_on_the_sample():
    r = evaluate_planted()
    assert set(r["recall"]) == {"EMAIL", "PHONE", "IBAN", "IP", "KVNR", "ADDRESS", "BIRTHDATE"}
    assert r["not_in_text"] == []  # every planted value and protected number really is in its document
    for kind, recall in r["recall"].items():
        assert recall >= 0.95, (kind, r["misses"])
    assert r["non_pii_total"] >= 150 and r["non_pii_change_rate"] <= 0.01, r["changed"]


# --- opt-out ---------------------------------------------------------------------------------------

def test_optout_matching():
    o = OptOutList.parse(["# comment", "example.de  # whole domain", "=shop.beispiel.at", "forum-site.de/forum/",
                          "", "https://www.pfad.ch/a"])
    assert o.match("https://example.de/x") == "optout_domain"
    assert o.match("http://www.Example.DE./seite") == "optout_domain"
    assert o.match("https://a.b.example.de:8443/") == "optout_domain"
    for url in ("https://notexample.de/", "https://example.de.evil.com/", "https://example.dev/", None, ""):
        assert o.match(url) is None, url
    assert o.match("https://shop.beispiel.at/p") == "optout_domain"
    assert o.match("https://www.shop.beispiel.at/p") is None and o.match("https://beispiel.at/") is None
    assert o.match("https://www.forum-site.de/forum/thread/1") == "optout_path"
    assert o.match("https://forum-site.de/forum-archiv/") is None and o.match("https://forum-site.de/") is None
    assert o.match("https://www.pfad.ch/a/b") == "optout_path" and o.match("https://pfad.ch/a") is None
    with pytest.raises(UserError, match="line|:2"):
        OptOutList.parse(["ok.de", "kein eintrag"], "list.txt")


def test_example_optout_list_drops_sample_documents():
    f = OptOutFilter([sample.sample_dir() / "optout_de.txt"])
    reasons = [f.filter(Document(text="x", id=d["id"], metadata={"url": d["url"]})) for d in sample.load_docs()]
    drops = [r[1] for r in reasons if r is not True]
    assert drops.count("optout_domain") >= 2 and drops.count("optout_path") >= 1
    assert len(drops) < 10


# --- decontamination -------------------------------------------------------------------------------

def test_normalise_and_short_item_rule(tmp_path):
    assert normalise("Welche  AUSSAGE – trifft ﬁnal zu?") == ["welche", "aussage", "trifft", "final", "zu"]  # NFKC
    bench = tmp_path / "kurz.txt"
    bench.write_text("Welche Aussage trifft zu?\n"
                     "Nenne drei typische Symptome einer akuten Blinddarmentzündung bei Kindern.\n")
    index = BenchmarkIndex.from_files([bench], n=13, min_words=8)
    assert index.items == {"kurz": 1}  # the 4-word line is too generic, the 9-word line is one 9-gram
    quoted = "Frage: Nenne drei typische Symptome einer akuten Blinddarmentzündung bei Kindern! Danke."
    assert index.hits(quoted) == {"kurz"}
    assert index.hits("Nenne drei typische Symptome einer akuten Gallenkolik.") == set()


def test_decontamination_on_planted_documents():
    labels = {lab.key: lab for lab in sample.load_labels()}
    planted = read_jsonl(sample.sample_dir() / "labels" / "contamination_planted.jsonl")
    expected = {p["id"]: set(p["benchmarks"]) for p in planted if p["expected"]}
    near_miss = {p["id"] for p in planted if not p["expected"]}
    assert len(expected) >= 4 and len(near_miss) >= 2
    assert all(labels[p["key"]].id == p["id"] for p in planted)
    index = BenchmarkIndex.from_files(DecontamConfig().benchmarks)
    found = {d["id"]: index.hits(d["text"]) for d in sample.load_docs()}
    found = {k: v for k, v in found.items() if v}
    assert found == expected  # every planted case, no near-miss, nothing unexpected
    for doc_id in near_miss:
        assert doc_id not in found


def test_decontamination_modes():
    text = sample.load_mcq()[2].question + " Wer weiß die Antwort?"
    drop = DecontaminationFilter(DecontamConfig())
    assert drop.filter(Document(text=text, id="a")) == (False, "contaminated")
    flag = DecontaminationFilter(DecontamConfig(mode="flag"))
    doc = Document(text=text, id="b")
    assert flag.filter(doc) is True and doc.metadata["contaminated_by"] == ["mcq_de"]
    assert flag.stats.to_dict()["stats"]["contaminated_mcq_de"] == 1
    assert drop.filter(Document(text="Ein ganz anderer Text über das Wetter in Kiel.", id="c")) is True


# --- in a real datatrove executor, then the dataset card ------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small but real corpus run folder: the sample parquet through the compliance steps in
    datatrove's LocalPipelineExecutor, with config.yaml, manifest.json and stats.json."""
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import JsonlWriter

    from definemed.corpus.config import CorpusConfig, ExecutorConfig
    from definemed.corpus.executors import run_phase
    from definemed.corpus.stats import collect_stats
    from definemed.corpus.writers import exclusion_writer
    from definemed.runs import RunDir, atomic_write_json

    out = tmp_path_factory.mktemp("corpus-run")
    comp = ComplianceConfig.model_validate({"optout": {"lists": [str(sample.sample_dir() / "optout_de.txt")]}})
    cfg = CorpusConfig(name="compliance-test", output_dir=out, input={"paths": [str(sample.docs_dir())]},
                       tokenizer=None)
    data = {**cfg.model_dump(mode="json"), "compliance": comp.model_dump(mode="json")}
    run = RunDir(out, "corpus").start(data, seed=0)
    early, late = compliance_steps(comp, lambda name: exclusion_writer(str(out / "work" / "excluded" / name)))
    assert [type(s).__name__ for s in early + late] == ["OptOutFilter", "DecontaminationFilter", "PIIScrubber"]
    run_phase([ParquetReader(str(sample.docs_dir())), *early, *late,
               JsonlWriter(str(out / "shards"), output_filename="${rank}.jsonl", compression=None)],
              ExecutorConfig(tasks=4, workers=1), out / "logs" / "minhash_filter", "minhash_filter")
    stats = collect_stats(out / "logs")
    stats["compliance"] = collect_compliance_stats(out / "logs")
    stats["points"] = {"output": {"documents": sum(1 for f in (out / "shards").glob("*.jsonl")
                                                   for _ in f.open()), "tokens": 0}}
    atomic_write_json(out / "stats.json", stats)
    run.finish({"points": stats["points"]})
    return out


def test_steps_in_executor_on_real_parquet(run_dir):
    comp = json.loads((run_dir / "stats.json").read_text())["compliance"]
    docs = [json.loads(line) for f in sorted((run_dir / "shards").glob("*.jsonl")) for line in f.open()]
    n_in = len(sample.load_docs())
    planted = read_jsonl(sample.sample_dir() / "labels" / "pii_planted.jsonl")
    contaminated = {p["id"] for p in read_jsonl(sample.sample_dir() / "labels" / "contamination_planted.jsonl")
                    if p["expected"]}
    dropped_optout = sum(comp["optout"].values())
    assert comp["optout"]["optout_domain"] >= 2 and comp["optout"]["optout_path"] >= 1
    assert comp["decontamination"]["by_benchmark"]["mcq_de"] >= 2
    assert comp["decontamination"]["by_benchmark"]["instructions_de"] >= 2
    assert len(docs) == n_in - dropped_optout - comp["decontamination"]["dropped"]
    assert not contaminated & {d["id"] for d in docs}
    text = {d["id"]: d["text"] for d in docs}
    for row in planted:  # every planted value is gone from the written documents
        for item in row["pii"]:
            assert row["id"] not in text or item["value"] not in text[row["id"]], item
    assert comp["pii"]["by_type"]["EMAIL"] >= 18 and comp["pii"]["documents"] >= 20
    excluded = list((run_dir / "work" / "excluded").glob("*/*.jsonl*"))
    assert {p.parent.name for p in excluded} == {"optout", "contaminated"}


def test_dataset_card_from_run_dir(run_dir):
    path = write_dataset_card(run_dir)
    card = path.read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "odc-by" and front["language"] == ["de"]
    assert front["task_categories"] == ["text-generation"] and front["size_categories"] == ["n<1K"]
    comp = json.loads((run_dir / "stats.json").read_text())["compliance"]
    assert "ODC-By" in card and "Common Crawl" in card and "`<TELEFON>`" in card
    assert f"| EMAIL | {comp['pii']['by_type']['EMAIL']} |" in card
    assert f"{comp['optout']['optout_domain']} by domain/host" in card
    mcq_hits = comp["decontamination"]["by_benchmark"]["mcq_de"]
    assert f"| `mcq_de` | `{DecontamConfig().benchmarks[0]}` | {mcq_hits} |" in card
    assert "`medical_score`" in card and "🧪 decontamination" in card


def test_dataset_card_tolerates_runs_without_compliance(run_dir, tmp_path):
    for name in ("config.yaml", "manifest.json"):
        (tmp_path / name).write_text((run_dir / name).read_text())
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg.pop("compliance")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "stats.json").write_text(json.dumps({"points": {"output": {"documents": 12_345, "tokens": 9}},
                                                     "steps": []}))
    card = write_dataset_card(tmp_path).read_text()
    assert "10K<n<100K" in card and "No opt-out list" in card and "scrubber did not run" in card
    assert size_category(999) == "n<1K" and size_category(2_000_000) == "1M<n<10M"
    with pytest.raises(UserError, match="not a finished corpus run"):
        write_dataset_card(tmp_path / "nope")
