"""The wav2vec 2.0 chapter's full-scale command, run offline on stand-ins in the real formats.

Only the downloads are replaced: ``datasets.load_dataset`` returns a tiny ``DatasetDict`` with TIMIT's splits and
columns, and the checkpoint is a randomly initialised ``transformers.Wav2Vec2ForPreTraining`` with the configuration of
``facebook/wav2vec2-base`` saved with ``save_pretrained``, next to the base repository's feature extractor. One size
is shrunk for CPU time: 2 transformer blocks instead of 12 (the full 95 M-parameter model, saved, loaded twice, trained
and checkpointed with its optimiser state, took 100 s of the CI budget); every other field is BASE's. TIMIT's ``audio`` column is an ``Audio`` feature that ``datasets`` decodes with ``torchcodec``
(not a requirement of this project), so the stand-in stores what decoding returns: ``array``, ``sampling_rate``, ``path``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest


datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")

from annotated.wav2vec2 import TIMIT_FULL, labelled_audio_from_dataset, load_timit  # noqa: E402


# facebook/wav2vec2-base's config.json (the fields that shape or regularise the model)
WAV2VEC2_BASE = dict(
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
    hidden_dropout=0.1, activation_dropout=0.0, attention_dropout=0.1, feat_proj_dropout=0.1, final_dropout=0.0,
    layerdrop=0.05, layer_norm_eps=1e-5, feat_extract_norm="group", feat_extract_activation="gelu",
    conv_dim=[512] * 7, conv_stride=[5, 2, 2, 2, 2, 2, 2], conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_bias=False,
    num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, do_stable_layer_norm=False,
    mask_time_prob=0.05, mask_time_length=10, num_codevectors_per_group=320, num_codevector_groups=2,
    contrastive_logits_temperature=0.1, num_negatives=100, codevector_dim=256, proj_codevector_dim=256,
    diversity_loss_weight=0.1, vocab_size=32, pad_token_id=0,
)

SENTENCES = ["Who took the kayak down the bayou?", "She had your dark suit in greasy wash water all year.",
             "Don't ask me to carry an oily rag like that.", "Soak up local color.",
             "The gorgeous butterfly ate a lot of nectar.", "Where're you takin' me?"]


def timit_standin(rows: int, offset: int = 0, seconds: float = 1.5):
    """Rows in TIMIT's layout (the columns of ``load_dataset("timit_asr")``), with noise for audio."""
    rng = np.random.default_rng(offset)
    texts = [SENTENCES[(offset + i) % len(SENTENCES)] for i in range(rows)]
    detail = lambda words: {"start": list(range(len(words))), "stop": list(range(1, len(words) + 1)), "utterance": words}
    return datasets.Dataset.from_dict({
        "file": [f"/data/TRAIN/DR1/FCJF0/SI{offset + i}.WAV" for i in range(rows)],
        "audio": [{"path": f"SI{offset + i}.WAV", "sampling_rate": 16_000,
                   "array": (0.1 * rng.standard_normal(int(seconds * 16_000))).astype(np.float32)} for i in range(rows)],
        "text": texts,
        "phonetic_detail": [detail(["h#", "w", "ux"]) for _ in range(rows)],
        "word_detail": [detail(t.lower().split()) for t in texts],
        "dialect_region": ["dr1"] * rows,
        "sentence_type": ["SI"] * rows,
        "speaker_id": ["FCJF0"] * rows,
        "id": [f"SI{offset + i}" for i in range(rows)],
    })


@pytest.fixture
def offline_timit(monkeypatch, tmp_path):
    """A stand-in TIMIT behind ``datasets.load_dataset`` and a random BASE checkpoint in the hub's layout."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []

    def fake_load_dataset(name, *args, **kwargs):
        calls.append(name)
        return datasets.DatasetDict({"train": timit_standin(4), "test": timit_standin(2, offset=4)})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return random_base_checkpoint(tmp_path), calls


def random_base_checkpoint(tmp_path, attention_mask: bool = False):
    """A randomly initialised BASE-shaped ``Wav2Vec2ForPreTraining`` (2 blocks) and feature extractor, hub layout."""
    checkpoint = tmp_path / "wav2vec2-base"
    transformers.set_seed(0)
    shrunk = WAV2VEC2_BASE | {"num_hidden_layers": 2}  # CPU time: see the module docstring
    transformers.Wav2Vec2ForPreTraining(transformers.Wav2Vec2Config(**shrunk)).save_pretrained(checkpoint)
    transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True,
                                          return_attention_mask=attention_mask).save_pretrained(checkpoint)
    return checkpoint


def test_smoke_run_writes_results_and_resumes(offline_timit, tmp_path):
    from scripts.full_scale import wav2vec2 as script

    checkpoint, calls = offline_timit
    out = tmp_path / "run"
    record = script.main(["--out", str(out), "--smoke", "--checkpoint", str(checkpoint)])
    assert calls == ["timit_asr"]
    assert record["smoke"] and record["steps"] == 2 and record["chapter"] == "wav2vec2"
    assert 0 <= record["metrics"]["wer"] and 0 <= record["metrics"]["wer_with_lm"]
    assert record["settings"]["learning_rate"] == 1e-4 and record["settings"]["num_train"] == 4
    assert json.loads((out / "results.json").read_text())["metrics"] == record["metrics"]
    saved = sorted((out / "checkpoints").glob("*.safetensors"))
    assert saved, "no safetensors checkpoint was written"
    again = script.main(["--out", str(out), "--smoke", "--checkpoint", str(checkpoint)])  # resumes at step 2: no training
    assert again["steps"] == 2 and again["settings"]["final_train_loss"] == record["settings"]["final_train_loss"]
    assert sorted((out / "checkpoints").glob("*.safetensors")) == saved


def test_renamed_column_is_refused():
    standin = timit_standin(2).rename_column("text", "transcription")
    with pytest.raises(ValueError, match="expected a column 'text'"):
        labelled_audio_from_dataset(standin)


def test_wrong_sampling_rate_is_refused(monkeypatch):
    split = timit_standin(1)
    rows = split.to_dict()
    rows["audio"][0]["sampling_rate"] = 8_000
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict(rows), "test": split}))
    with pytest.raises(ValueError, match="expected audio at 16000 Hz, got 8000 Hz"):
        load_timit()


def test_full_config_is_the_posts():
    """The values "Fine-Tune Wav2Vec2 for English ASR with 🤗 Transformers" trains with (its TrainingArguments)."""
    post = dict(checkpoint="facebook/wav2vec2-base", dataset="timit_asr", learning_rate=1e-4, weight_decay=0.005,
                warmup_steps=1000, batch_size=32, epochs=30, save_every=500, mixed_precision="fp16",
                group_by_length=True, freeze_feature_encoder=True, use_attention_mask=False, ctc_loss_reduction="mean")
    assert {name: getattr(TIMIT_FULL, name) for name in post} == post
    assert TIMIT_FULL.total_steps(4620) == 30 * 145  # TIMIT's 4,620 training utterances
    assert TIMIT_FULL.lm_order == 5  # the n-gram post's KenLM 5-gram


# Common Voice (the XLS-R post's "common_voice", config "tr"): clips at 48 kHz in an ``audio`` column (what decoding
# returns: array, sampling_rate, path) and the text in ``sentence``, next to its other columns.
TURKISH = ["Jonuz, kısa süreli görevi kabul eden tek adaydı.", "Biz umudumuzu bu mücadeleden almaktayız.",
           "Işıl hâlâ İstanbul'da!", "Fakat bu çabalar boşa çıktı."]


def common_voice_standin(rows: int, offset: int = 0, seconds: float = 1.5, rate: int = 48_000):
    rng = np.random.default_rng(offset)
    return datasets.Dataset.from_dict({
        "client_id": [f"c{offset + i}" for i in range(rows)],
        "path": [f"common_voice_tr_{offset + i}.mp3" for i in range(rows)],
        "audio": [{"path": f"common_voice_tr_{offset + i}.mp3", "sampling_rate": rate,
                   "array": (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32)} for i in range(rows)],
        "sentence": [TURKISH[(offset + i) % len(TURKISH)] for i in range(rows)],
        "up_votes": [2] * rows, "down_votes": [0] * rows, "age": [""] * rows, "gender": [""] * rows,
        "accent": [""] * rows, "locale": ["tr"] * rows, "segment": [""] * rows,
    })


@pytest.fixture
def offline_common_voice(monkeypatch, tmp_path):
    """A stand-in Common Voice behind ``datasets.load_dataset`` and a random checkpoint in the hub's layout."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []

    def fake_load_dataset(name, config=None, *, split=None, **kwargs):
        calls.append((name, config, split))
        return {"train+validation": common_voice_standin(4), "test": common_voice_standin(2, offset=4)}[split]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return random_base_checkpoint(tmp_path, attention_mask=True), calls


def test_common_voice_smoke_run_writes_results(offline_common_voice, tmp_path):
    from scripts.full_scale import wav2vec2_common_voice as script

    checkpoint, calls = offline_common_voice
    out = tmp_path / "run"
    record = script.main(["--out", str(out), "--smoke", "--checkpoint", str(checkpoint)])
    assert calls == [("common_voice", "tr", "train+validation"), ("common_voice", "tr", "test")]
    assert record["smoke"] and record["steps"] == 2 and record["chapter"] == "wav2vec2_common_voice"
    assert 0 <= record["metrics"]["wer"] and 0 <= record["metrics"]["wer_with_lm"]
    assert record["settings"]["learning_rate"] == 3e-4 and record["settings"]["use_attention_mask"]
    assert record["settings"]["num_train"] == 4 and record["settings"]["language"] == "tr"
    assert json.loads((out / "results.json").read_text())["metrics"] == record["metrics"]
    assert sorted((out / "checkpoints").glob("*.safetensors")), "no safetensors checkpoint was written"


def test_common_voice_loader_resamples_and_cleans(offline_common_voice):
    from annotated.wav2vec2 import load_common_voice

    train = load_common_voice("tr", "train+validation")
    assert train.sampling_rate == 16_000 and [len(a) for a in train.audio] == [24_000] * 4  # 1.5 s at 16 kHz
    assert train.texts[2] == "ışıl hala istanbulda" and train.texts[0] == "jonuz kısa süreli görevi kabul eden tek adaydı"
    with pytest.raises(ValueError, match="expected a column 'sentence'"):
        from annotated.wav2vec2 import common_voice_from_dataset

        common_voice_from_dataset(common_voice_standin(1).rename_column("sentence", "text"))
