"""Every full-scale command whose data or checkpoint cannot be reached ends with one line and exit status 1.

Each command runs as a subprocess with ``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1`` and an empty ``HF_HOME``:
the Hugging Face libraries then fail at once, where without network and without those variables they retry each
file for about 25 s (printing a warning per retry) before the command prints the same kind of line. The output
checked: nothing on stdout and exactly one non-empty line on stderr, which starts with the command, names what it
tried to reach and says what to do instead.

A command reads its checkpoint's config before its data set (``common.require_checkpoint``), so with the defaults
the checkpoint is what fails; the data set's line is checked by passing ``--checkpoint`` a local folder that holds
only a ``config.json``. Commands with nothing to download are listed in ``NOTHING_TO_DOWNLOAD`` with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.full_scale import common


REPO_ROOT = Path(__file__).resolve().parents[1]
HUB_CACHE = "set HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1"
NOTHING_TO_DOWNLOAD = {
    "q_learning": "FrozenLake and Taxi are gymnasium's own toy-text environments, built locally",
    "ppo": "LunarLander-v3 is simulated locally by gymnasium's Box2D; the networks start from random weights",
    "dqn_atari": "ale-py emulates the Atari 2600 locally with the ROMs its wheel ships; the Q-network starts from random weights",
}


@dataclass(frozen=True)
class Case:
    """One command line, what its message must name, and the remedy it must give."""

    command: str
    reached: str
    remedies: tuple[str, ...]
    local_config: str | None = None  # a transformers config class: --checkpoint a folder with its config.json

    def __str__(self) -> str:
        return self.command + ("-data" if self.local_config else "")


CASES = [
    Case("ddpm", "the data set 'fashion_mnist' on the Hugging Face hub", (HUB_CACHE,)),
    Case("encoder_decoder", "the checkpoint 'Helsinki-NLP/opus-mt-en-de' on the Hugging Face hub",
         ("pass --checkpoint a local folder", HUB_CACHE)),
    Case("encoder_decoder", "the data set 'wmt16' (config 'de-en') on the Hugging Face hub", (HUB_CACHE,),
         "MarianConfig"),
    Case("warm_starting", "the checkpoint 'bert-base-uncased' on the Hugging Face hub",
         ("pass --checkpoint a local folder", HUB_CACHE)),
    Case("warm_starting", "the data set 'cnn_dailymail' (config '3.0.0') on the Hugging Face hub", (HUB_CACHE,),
         "BertConfig"),
    Case("wav2vec2", "the checkpoint 'facebook/wav2vec2-base' on the Hugging Face hub",
         ("pass --checkpoint a local folder", HUB_CACHE)),
    Case("wav2vec2", "the data set 'timit_asr' on the Hugging Face hub", ("pass --data-dir", HUB_CACHE),
         "Wav2Vec2Config"),
    Case("wav2vec2_common_voice", "the checkpoint 'facebook/wav2vec2-xls-r-300m' on the Hugging Face hub",
         ("pass --checkpoint a local folder", HUB_CACHE)),
    Case("wav2vec2_common_voice", "the data set 'common_voice' (config 'tr') on the Hugging Face hub", (HUB_CACHE,),
         "Wav2Vec2Config"),
    Case("reformer", "https://www.gutenberg.org/cache/epub/2554/pg2554.txt", ("pass --text",)),
]


def offline_run(command: str, arguments: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``python -m scripts.full_scale.<command>`` offline, with an empty Hugging Face cache and ``--out`` in tmp."""
    home = tmp_path / "hf_home"
    home.mkdir()
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(home), "TQDM_DISABLE": "1",
                        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("TRANSFORMERS_OFFLINE", None)
    return subprocess.run([sys.executable, "-m", f"scripts.full_scale.{command}", "--out", str(tmp_path / "out"),
                           *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_unreachable_download_ends_with_one_line(case, tmp_path):
    arguments = []
    if case.local_config:
        transformers = pytest.importorskip("transformers")
        getattr(transformers, case.local_config)().save_pretrained(tmp_path / "checkpoint")
        arguments = ["--checkpoint", str(tmp_path / "checkpoint")]
    done = offline_run(case.command, arguments, tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, f"exit status {done.returncode}, expected 1; stderr: {' | '.join(lines[-5:])}"
    assert done.stdout == "", f"printed on stdout: {done.stdout[:200]!r}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr, expected 1; the last: {' | '.join(lines[-5:])}"
    prefix = f"python -m scripts.full_scale.{case.command}: could not reach {case.reached} ("
    assert lines[0].startswith(prefix), f"expected the line to start {prefix!r}, got {lines[0]!r}"
    missing = [remedy for remedy in case.remedies if remedy not in lines[0]]
    assert not missing, f"the line does not say {missing}: {lines[0]!r}"


def test_every_command_is_checked_or_has_nothing_to_download():
    commands = {path.stem for path in (REPO_ROOT / "scripts" / "full_scale").glob("*.py")} - {"__init__", "common"}
    checked = {case.command for case in CASES}
    assert not checked & NOTHING_TO_DOWNLOAD.keys(), "a command cannot be both checked and exempt"
    unaccounted = sorted(commands - checked - NOTHING_TO_DOWNLOAD.keys())
    assert not unaccounted, f"not checked offline and not listed in NOTHING_TO_DOWNLOAD: {unaccounted}"
    assert checked | NOTHING_TO_DOWNLOAD.keys() <= commands, "a case names a command that does not exist"


def test_failed_download_becomes_one_line_naming_what_and_what_to_do():
    cause = ConnectionError("Couldn't reach 'x' on the Hub\n(second line)")
    with pytest.raises(common.Unreachable) as caught:
        with common.reaching("the data set 'x'", "do this", hub=False):
            raise cause
    assert str(caught.value) == "could not reach the data set 'x' (ConnectionError: Couldn't reach 'x' on the Hub " \
                                "(second line)); do this"
    assert caught.value.__cause__ is cause


def test_other_errors_keep_their_traceback(tmp_path):
    with pytest.raises(ValueError, match="bad column"):  # raised while handling a network error: still not one
        with common.reaching("x", "y"):
            try:
                raise ConnectionError("hub unreachable")
            except ConnectionError:
                raise ValueError("bad column")  # noqa: B904 (the test needs an error raised while handling one)
    from scripts.full_scale import reformer

    missing = tmp_path / "pg2554.txt"  # a wrong --text is the reader's mistake, not an unreachable download
    with pytest.raises(FileNotFoundError, match="pg2554.txt"):
        reformer.main(["--smoke", "--out", str(tmp_path / "out"), "--text", str(missing)])


def test_run_exits_with_the_line_and_lets_other_errors_through():
    def unreachable() -> None:
        raise common.Unreachable("could not reach x (why); do y")

    with pytest.raises(SystemExit) as caught:
        common.run("ddpm", unreachable)
    assert caught.value.code == "python -m scripts.full_scale.ddpm: could not reach x (why); do y"

    def broken() -> None:
        raise KeyError("not a download")

    with pytest.raises(KeyError, match="not a download"):
        common.run("ddpm", broken)
