"""Warm-start BERT2BERT from bert-base-uncased, fine-tune it on CNN/DailyMail with the post's recipe, report ROUGE-2.

    python -m scripts.full_scale.warm_starting [--out DIR] [--checkpoint bert-base-uncased] [--smoke]

The code is the chapter's (``annotated.warm_starting``: ``CNN_DAILYMAIL_FULL``, ``load_cnn_dailymail``,
``finetune_bert2bert``); this file only parses the command line and writes the results JSON. ``--smoke`` (CI) runs
two optimisation steps of batch 2 on the first 4 training pairs and beam-decodes the first test article with the
post's beam settings but summaries of 4 to 12 tokens (56 to 142 tokens took 95 s on one CPU thread).
"""

from __future__ import annotations

import dataclasses

from annotated.warm_starting import CNN_DAILYMAIL_FULL, finetune_bert2bert, load_cnn_dailymail
from scripts.full_scale import common


CHAPTER = "warm_starting"
SMOKE_TRAIN, SMOKE_TEST, SMOKE_STEPS, SMOKE_BATCH = 4, 1, 2, 2
SMOKE_SUMMARY_LENGTHS = dict(min_length=4, max_length=12)


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(CHAPTER, __doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=CNN_DAILYMAIL_FULL.checkpoint,
                        help="a BERT checkpoint: a hub id or a folder in the hub's layout (with tokenizer.json)")
    args = parser.parse_args(argv)
    stopwatch = common.Stopwatch()
    config = dataclasses.replace(CNN_DAILYMAIL_FULL, checkpoint=args.checkpoint)
    common.require_checkpoint(config.checkpoint)
    with common.reaching(common.hub_dataset(config.dataset, config.dataset_config), common.HUB_CACHE_REMEDY):
        data = load_cnn_dailymail(config)
    if args.smoke:
        config = dataclasses.replace(config, **SMOKE_SUMMARY_LENGTHS)
        data = common.first_pairs(data, SMOKE_TRAIN, SMOKE_TEST)
    with common.reaching(common.hub_checkpoint(config.checkpoint), common.CHECKPOINT_REMEDY):  # weights, tokenizer
        metrics = finetune_bert2bert(
            data, config, checkpoint_dir=args.out / "checkpoints",
            max_steps=SMOKE_STEPS if args.smoke else None, batch_size=SMOKE_BATCH if args.smoke else None,
        )
    if not common.is_main_process():
        return {}
    settings = dataclasses.asdict(config) | {
        "num_train": len(data["train"][0]), "num_test": metrics["num_test"],
        "final_train_loss": metrics["final_train_loss"], "examples": metrics["examples"],
    }
    return common.write_results(CHAPTER, args.out, metrics={"rouge2": metrics["rouge2"], "rougeL": metrics["rougeL"]},
                                steps=metrics["steps"], wall_seconds=stopwatch.seconds(), settings=settings,
                                smoke=args.smoke)


if __name__ == "__main__":
    common.run(CHAPTER, main)
