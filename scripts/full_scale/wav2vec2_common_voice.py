"""Fine-tune XLS-R (300M) on Common Voice Turkish with the XLS-R post's settings and report the test WER.

    python -m scripts.full_scale.wav2vec2_common_voice [--out DIR] [--language tr] [--checkpoint facebook/wav2vec2-xls-r-300m] [--smoke]

The code is the chapter's (``annotated.wav2vec2``: ``COMMON_VOICE_TR``, ``load_common_voice``, ``finetune_on_timit``,
which fine-tunes any ``LabelledAudio``); this file only parses the command line and writes the results JSON. The
training split is Common Voice's ``train+validation`` and the test split ``test``, as in the post. ``--smoke`` (CI)
runs two optimisation steps of batch 2 on the first 4 training clips and decodes the first 2 test clips.
"""

from __future__ import annotations

import dataclasses

from annotated.wav2vec2 import COMMON_VOICE_TR, load_common_voice
from scripts.full_scale import common
from scripts.full_scale.wav2vec2 import finetune_and_report


CHAPTER = "wav2vec2_common_voice"
SMOKE_TRAIN, SMOKE_TEST = 4, 2  # clips; steps and batch of a smoke run are the TIMIT command's


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(CHAPTER, __doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=COMMON_VOICE_TR.checkpoint,
                        help="pretrained wav2vec 2.0 / XLS-R: a hub id or a folder in the hub's layout")
    parser.add_argument("--dataset", default=COMMON_VOICE_TR.dataset, help="the datasets name of Common Voice")
    parser.add_argument("--language", default="tr", help="Common Voice's language code (its config name)")
    args = parser.parse_args(argv)
    stopwatch = common.Stopwatch()
    config = dataclasses.replace(COMMON_VOICE_TR, checkpoint=args.checkpoint, dataset=args.dataset)
    common.require_checkpoint(config.checkpoint)
    limit_train, limit_test = (SMOKE_TRAIN, SMOKE_TEST) if args.smoke else (None, None)
    with common.reaching(common.hub_dataset(config.dataset, args.language), common.HUB_CACHE_REMEDY):
        train = load_common_voice(args.language, "train+validation", name=config.dataset, limit=limit_train)
        test = load_common_voice(args.language, "test", name=config.dataset, limit=limit_test)
    return finetune_and_report(CHAPTER, args, config, train, test, stopwatch, language=args.language)


if __name__ == "__main__":
    common.run(CHAPTER, main)
