"""The second language: Turkish cleaning and vocabulary, resampling, and scripts/wav2vec2_second_language.py end to end
at its CI size (plus the finding of the committed full run)."""

import json
from pathlib import Path

import numpy as np
import pytest

from annotated.wav2vec2 import (
    CharTokenizer,
    build_vocabulary,
    clean_transcript,
    lower_case,
    make_corpus_plan,
    random_turkish_sentence,
    resample_audio,
    turkish_upper_first,
)
from scripts import wav2vec2_second_language as script


COMMITTED = Path(__file__).resolve().parents[1] / "results" / "wav2vec2" / "second_language.json"


def test_turkish_lower_case_maps_dotted_and_dotless_i():
    assert lower_case("İSTANBUL IĞDIR", "tr") == "istanbul ığdır"
    assert "İ".lower() == "i\u0307" and "I".lower() == "i"  # what str.lower does, and why it is not used for Turkish
    assert lower_case("IRIS", "en") == "iris"
    assert turkish_upper_first("ışık") == "Işık" and turkish_upper_first("inek") == "İnek"


def test_clean_transcript_removes_special_characters_and_circumflexes():
    assert clean_transcript("  İpek, Işıl'ı hâlâ   görüyor!  ") == "ipek ışılı hala görüyor"
    assert clean_transcript('"Ne?" dedi; “evet” - %100.') == "ne dedi evet 100"


def test_build_vocabulary_layout_and_tokenizer():
    vocabulary = build_vocabulary(["Işık çok güzel.", "İnek ÖĞLEDE süt içer!"])
    assert list(vocabulary)[:3] == ["[PAD]", "[UNK]", "|"]
    assert list(vocabulary.values()) == list(range(len(vocabulary)))
    assert {"ı", "ş", "ç", "ü", "ö", "ğ", "i"} <= set(vocabulary) and not {"I", "İ", "."} & set(vocabulary)
    tokenizer = CharTokenizer.from_vocabulary(vocabulary)
    assert tokenizer.ids == vocabulary and tokenizer.pad_id == 0
    ids = tokenizer.encode(clean_transcript("Işık güzel"))
    assert tokenizer.decode(ids) == "ışık güzel"
    with pytest.raises(ValueError, match="expected the vocabulary"):
        CharTokenizer.from_vocabulary({"[UNK]": 0, "[PAD]": 1, "|": 2, "a": 3})
    with pytest.raises(ValueError, match="empty after cleaning"):
        build_vocabulary(["?!", ""])


def test_turkish_corpus_plan_uses_turkish_letters_and_unseen_test_voices():
    train, test = make_corpus_plan(60, 20, seed=0, sentence=random_turkish_sentence, **script.TURKISH_VOICES)
    letters = set(build_vocabulary([u.text for u in train]))
    assert {"ç", "ğ", "ı", "ö", "ş", "ü"} <= letters
    assert not {u.voice for u in train} & {u.voice for u in test}
    assert not {u.text for u in train} & {u.text for u in test}
    assert all(u.text[0].isupper() and u.text[-1] in ".!" for u in train)


def test_resample_audio_keeps_a_tone_and_its_duration():
    t = np.arange(48_000) / 48_000
    tone = np.sin(2 * np.pi * 440 * t)
    down = resample_audio(tone, 48_000, 16_000)
    assert down.shape == (16_000,)
    expected = np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000)
    assert np.abs(down - expected)[100:-100].max() < 1e-2  # away from the filter's edges
    assert resample_audio(tone[:22_050], 22_050, 16_000).shape == (16_000,)
    with pytest.raises(ValueError, match="mono clip"):
        resample_audio(np.zeros((2, 10)), 48_000)


def test_script_runs_at_ci_size_and_resumes(tmp_path):
    args = ["--ci", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--no-progress"]
    results = script.main(args)
    stored = json.loads((tmp_path / "out" / "second_language_ci.json").read_text())
    assert (tmp_path / "out" / "second_language_ci.png").is_file()
    sizes = script.CI
    assert len(stored["runs"]) == len(script.STARTS) * len(sizes["ctc_lrs"]) * len(sizes["seeds"])
    for run in stored["runs"].values():
        assert 0 <= run["cer"] and 0 <= run["wer"] and len(run["ctc_losses"]) == sizes["ctc_steps"]
    assert stored["settings"]["synthesis_rate"] == 48_000 and stored["settings"]["model_rate"] == 16_000
    assert stored["settings"]["vocabulary"]["[PAD]"] == 0
    assert not set(stored["settings"]["train_voices"]) & set(stored["settings"]["test_voices"])
    assert stored["summary"]["finding"] in ("helps", "hurts", "within spread")
    assert {row["start"] for row in stored["summary"]["rows"]} == set(script.STARTS)
    # resuming: the cached encoder and the run files are reused, nothing is trained again
    run_files = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "work" / "runs").glob("*.json")}
    again = script.main(args)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "work" / "runs").glob("*.json")} == run_files
    assert {k: r["cer"] for k, r in again["runs"].items()} == {k: r["cer"] for k, r in results["runs"].items()}
    with pytest.raises(ValueError, match="another grid"):
        script.main(["--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--no-progress"])


def test_committed_run_finding():
    """The committed run (python -m scripts.wav2vec2_second_language): the finding the chapter states."""
    results = json.loads(COMMITTED.read_text())
    assert results["settings"]["seeds"] == script.FULL["seeds"] and len(script.FULL["seeds"]) >= 3
    assert len(results["runs"]) == len(script.STARTS) * len(script.FULL["ctc_lrs"]) * len(script.FULL["seeds"])
    assert results["summary"] == script.summarise(results["runs"], results["settings"])
    assert results["summary"]["finding"] == "helps"  # what section 15 of the chapter says
