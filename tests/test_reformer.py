"""annotated.reformer: parity with transformers' Reformer (forward, padding, gradients) and the exactness claims."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from annotated.reformer import (
    AxialPositionEmbeddings,
    ChunkedFeedForward,
    LocalSelfAttention,
    LSHSelfAttention,
    ReformerConfig,
    ReformerLM,
    bucket_factors,
    hash_vectors,
    reformer_from_transformers,
)


transformers = pytest.importorskip("transformers")

VOCAB = 37


def hf_reformer(**overrides) -> torch.nn.Module:
    """A small random-init ReformerModelWithLMHead: local + LSH layers, axial positions, chunked FF, dropout 0."""
    settings = dict(
        vocab_size=VOCAB, hidden_size=32, num_attention_heads=2, attention_head_size=8, feed_forward_size=48,
        attn_layers=["local", "lsh", "local", "lsh"], is_decoder=True, local_attn_chunk_length=8,
        lsh_attn_chunk_length=16, num_buckets=[2, 4], num_hashes=2, hash_seed=7, axial_pos_shape=[8, 8],
        axial_pos_embds_dim=[12, 20], max_position_embeddings=64, chunk_size_feed_forward=8, hidden_dropout_prob=0.0,
        local_attention_probs_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0, hidden_act="relu",
    )
    settings.update(overrides)
    torch.manual_seed(0)
    model = transformers.ReformerModelWithLMHead(transformers.ReformerConfig(**settings))
    with torch.no_grad():  # make biases and norms non-trivial so that a wrong mapping shows
        for name, parameter in model.named_parameters():
            if "layer_norm" in name or name.endswith("bias"):
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


CONFIGS = {
    "factorised-buckets-2-rounds": {},
    "8-buckets-1-round": dict(num_buckets=8, num_hashes=1),
    "gelu-3-rounds-2-before": dict(hidden_act="gelu", num_hashes=3, lsh_num_chunks_before=2, local_num_chunks_before=2),
}


@pytest.mark.parametrize("overrides", CONFIGS.values(), ids=CONFIGS.keys())
def test_forward_matches_transformers(overrides):
    hf = hf_reformer(**overrides).eval()
    ours = reformer_from_transformers(hf).eval()
    ids = torch.randint(0, VOCAB, (2, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = hf(ids, output_hidden_states=True)
        hidden = hf.reformer(ids).last_hidden_state
        torch.testing.assert_close(ours.hidden_states(ids), hidden, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours(ids), reference.logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("length", [8, 12, 40, 50])
def test_short_and_padded_inputs_match_transformers(length):
    """transformers pads inputs that are not a multiple of the chunk lengths in eval mode; so do we."""
    hf = hf_reformer().eval()
    ours = reformer_from_transformers(hf).eval()
    ids = torch.randint(1, VOCAB, (2, length), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("overrides", CONFIGS.values(), ids=CONFIGS.keys())
def test_gradients_match_transformers(overrides):
    hf = hf_reformer(**overrides).train()
    ours = reformer_from_transformers(hf).train()
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(0, VOCAB, (2, 64), generator=generator)
    labels = torch.randint(0, VOCAB, (2, 64), generator=generator)
    hf_loss = F.cross_entropy(hf(ids).logits.flatten(0, 1), labels.flatten())
    hf_loss.backward()
    loss = F.cross_entropy(ours(ids).flatten(0, 1), labels.flatten())
    loss.backward()
    torch.testing.assert_close(loss, hf_loss, atol=1e-5, rtol=0)
    theirs = dict(hf.named_parameters())
    ours_params = dict(ours.named_parameters())
    pairs = {
        "word_embeddings.weight": "reformer.embeddings.word_embeddings.weight",
        "lm_head.weight": "lm_head.decoder.weight",
        "layer_norm.weight": "reformer.encoder.layer_norm.weight",
    }
    for i, kind in enumerate(hf.config.attn_layers):
        projection = "query_key" if kind == "lsh" else "query"
        pairs[f"layers.blocks.{i}.attention.attention.{projection}.weight"] = (
            f"reformer.encoder.layers.{i}.attention.self_attention.{projection}.weight")
        pairs[f"layers.blocks.{i}.attention.attention.value.weight"] = (
            f"reformer.encoder.layers.{i}.attention.self_attention.value.weight")
        pairs[f"layers.blocks.{i}.attention.output.weight"] = f"reformer.encoder.layers.{i}.attention.output.dense.weight"
        pairs[f"layers.blocks.{i}.feed_forward.dense.weight"] = f"reformer.encoder.layers.{i}.feed_forward.dense.dense.weight"
        pairs[f"layers.blocks.{i}.feed_forward.layer_norm.bias"] = f"reformer.encoder.layers.{i}.feed_forward.layer_norm.bias"
    for k in range(2):
        pairs[f"position_embeddings.weights.{k}"] = f"reformer.embeddings.position_embeddings.weights.{k}"
    for mine, reference in pairs.items():
        expected = theirs[reference].grad.reshape(ours_params[mine].grad.shape)
        assert ours_params[mine].grad.abs().max() > 0, mine
        torch.testing.assert_close(ours_params[mine].grad, expected, atol=1e-5, rtol=0, msg=mine)
    assert all(p.grad is not None for p in ours.parameters())


def test_wrong_weights_are_caught():
    """The parity test can fail: perturbing one weight after conversion changes the logits."""
    hf = hf_reformer().eval()
    ours = reformer_from_transformers(hf).eval()
    with torch.no_grad():
        ours.layers.blocks[1].attention.attention.query_key.weight[0, 0] += 0.5
        ids = torch.randint(0, VOCAB, (1, 64), generator=torch.Generator().manual_seed(4))
        assert (ours(ids) - hf(ids).logits).abs().max() > 1e-4


def test_reversible_backward_equals_ordinary_backward_with_dropout():
    config = ReformerConfig(vocab_size=50, hidden_size=32, attention_head_size=16, feed_forward_size=64,
                            local_attn_chunk_length=8, lsh_attn_chunk_length=8, num_buckets=4, num_hashes=2,
                            axial_pos_shape=(8, 8), axial_pos_embds_dim=(8, 24), hidden_dropout_prob=0.1,
                            local_attention_probs_dropout_prob=0.1, lsh_attention_probs_dropout_prob=0.1)
    torch.manual_seed(0)
    reversible = ReformerLM(config).train()
    ordinary = copy.deepcopy(reversible)
    ordinary.layers.reversible = False
    ids = torch.randint(0, 50, (2, 64))
    for model in (reversible, ordinary):
        torch.manual_seed(5)
        model(ids).logsumexp(-1).mean().backward()
    rng_after = torch.get_rng_state()
    for a, b in zip(reversible.parameters(), ordinary.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=0)
    torch.manual_seed(5)
    reversible(ids).logsumexp(-1).mean().backward()
    assert torch.equal(torch.get_rng_state(), rng_after), "the backward pass must leave the global generator alone"


def test_chunked_feed_forward_is_exact():
    torch.manual_seed(0)
    layer = ChunkedFeedForward(16, 64)
    x = torch.randn(3, 50, 16)
    full = layer(x)
    for size in (1, 7, 50, 64):
        layer.chunk_size = size
        torch.testing.assert_close(layer(x), full, atol=1e-6, rtol=0)


def test_lengths_that_do_not_fit_the_chunks_are_rejected():
    local = LocalSelfAttention(16, 2, 8, chunk_length=16)
    lsh = LSHSelfAttention(16, 2, 8, chunk_length=16, num_buckets=4)
    for layer in (local, lsh):
        with pytest.raises(ValueError, match="multiple of, the chunk length 16; pad it to 48"):
            layer(torch.randn(1, 40, 16))
        assert layer(torch.randn(1, 48, 16)).shape == (1, 48, 16)
        assert layer(torch.randn(1, 10, 16)).shape == (1, 10, 16)


def test_bad_configurations_are_rejected():
    with pytest.raises(ValueError, match="even"):
        bucket_factors(3)
    with pytest.raises(ValueError, match="must sum to hidden_size"):
        ReformerConfig(hidden_size=64, axial_pos_embds_dim=(16, 16))
    with pytest.raises(ValueError, match="attn_layers"):
        ReformerConfig(attn_layers=("local", "global"))
    with pytest.raises(ValueError, match="positions must lie in"):
        AxialPositionEmbeddings((4, 4), (2, 2))(torch.tensor([16]))


def test_model_pads_and_refuses_too_long_inputs():
    config = ReformerConfig(vocab_size=20, hidden_size=32, attention_head_size=16, feed_forward_size=32,
                            local_attn_chunk_length=16, lsh_attn_chunk_length=32, num_buckets=2,
                            axial_pos_shape=(8, 8), axial_pos_embds_dim=(8, 24))
    model = ReformerLM(config).eval()
    assert model(torch.randint(0, 20, (1, 40))).shape == (1, 40, 20)  # padded to 64 internally
    with pytest.raises(ValueError, match="exceeds the model's maximum 64"):
        model(torch.randint(0, 20, (1, 70)))


def test_hash_is_seeded_and_factorised():
    x = torch.randn(2, 3, 100, 16)
    a, count = hash_vectors(x, (4, 8), num_hashes=2, seed=5)
    b, _ = hash_vectors(x, (4, 8), num_hashes=2, seed=5)
    assert count == 32 and a.shape == (2, 3, 2, 100) and torch.equal(a, b) and int(a.max()) < 32
    valid = torch.ones(2, 100, dtype=torch.bool)
    valid[:, 90:] = False
    padded, count = hash_vectors(x, (4, 8), num_hashes=2, seed=5, valid=valid)
    assert count == 33 and (padded[..., 90:] == 32).all() and torch.equal(padded[..., :90], a[..., :90])
