"""Unit language models (pure torch: no training, engine or CLI code).

Vocabulary: ids ``0..k-1`` are units, ``k`` is SOS (prepended to every utterance), ``k+1`` is PAD
(input side only). The models predict the next *unit*: logits have ``k`` classes.

Training and scoring use packed sequences: :meth:`LSTMUnitLM.forward` returns logits only for the
``N = sum(lengths)`` real positions, in the order of ``pack_padded_sequence(..., enforce_sorted=False)``
(:func:`packed_index` gives that order for any ``(B, T)`` tensor), so padding costs no output
projection and no softmax, and on CUDA no LSTM step either (on CPU the fused LSTM runs over the
length-bucketed batch, which is faster than PyTorch's packed loop there; see :meth:`LSTMUnitLM.forward`).
"""

from __future__ import annotations

import typing as tp

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

State = tp.Any


def packed_index(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Flat indices ``b * max_len + t`` of the real positions, in packed order: ``(N,)`` long.

    ``values.reshape(B * T)[packed_index(lengths, T)]`` packs any ``(B, T)`` tensor like the model's
    outputs (targets, batch ids).
    """
    b = lengths.numel()
    flat = torch.arange(b * max_len, dtype=torch.long).view(b, max_len)
    return pack_padded_sequence(flat, lengths.cpu(), batch_first=True, enforce_sorted=False).data


class LSTMUnitLM(nn.Module):
    """Embedding -> LSTM -> linear over the k units.

    Args:
        num_units: k.
        embedding_dim: unit embedding size.
        hidden_size: LSTM hidden size.
        num_layers: stacked LSTM layers.
        dropout: on embeddings, between LSTM layers and on outputs.
    """

    def __init__(self, num_units: int, embedding_dim: int = 256, hidden_size: int = 512, num_layers: int = 2,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.num_units, self.sos, self.pad = num_units, num_units, num_units + 1
        self.config = {"num_units": num_units, "embedding_dim": embedding_dim, "hidden_size": hidden_size,
                       "num_layers": num_layers, "dropout": dropout}
        self.embed = nn.Embedding(num_units + 2, embedding_dim, padding_idx=self.pad)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_units)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor, rnn_packing: bool | None = None) -> torch.Tensor:
        """Logits ``(N, k)`` of the real positions of ``inputs`` ``(B, T)`` (SOS-first ids), packed order.

        ``rnn_packing`` (default: on CUDA only) runs the LSTM on a PackedSequence (cuDNN skips the
        padding). On CPU PyTorch's packed LSTM is a per-step loop ~4x slower than the fused kernel, so
        the LSTM runs over the (length-bucketed, nearly unpadded) batch and the positions past each
        utterance's end are dropped before the output layer; an LSTM is causal, so the outputs at real
        positions are the same either way.
        """
        emb = self.drop(self.embed(inputs))
        if inputs.is_cuda if rnn_packing is None else rnn_packing:
            out = self.lstm(pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False))[0].data
        else:
            h, _ = self.lstm(emb)
            out = h.reshape(-1, h.shape[-1])[packed_index(lengths, inputs.shape[1]).to(h.device)]
        return self.head(self.drop(out))

    def forward_padded(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, k)`` at every position, padding included (the plain padded-batch loop)."""
        out, _ = self.lstm(self.drop(self.embed(inputs)))
        return self.head(self.drop(out))

    def step(self, tokens: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """Feed ``tokens`` ``(B, S)`` after ``state``; logits ``(B, S, k)`` and the new state."""
        out, state = self.lstm(self.embed(tokens), state)
        return self.head(out), state


class TransformerUnitLM(nn.Module):
    """A small causal transformer: embedding + learned positions -> pre-norm encoder layers -> linear.

    Args:
        num_units: k.
        embedding_dim: model width.
        hidden_size: feed-forward width.
        num_layers: layers.
        num_heads: attention heads (must divide embedding_dim).
        dropout: dropout everywhere.
        max_len: longest input (positions), SOS included.
    """

    def __init__(self, num_units: int, embedding_dim: int = 256, hidden_size: int = 1024, num_layers: int = 4,
                 num_heads: int = 4, dropout: float = 0.1, max_len: int = 2048) -> None:
        super().__init__()
        if embedding_dim % num_heads:
            raise ValueError(f"embedding_dim {embedding_dim} is not a multiple of num_heads {num_heads}")
        self.num_units, self.sos, self.pad, self.max_len = num_units, num_units, num_units + 1, max_len
        self.config = {"num_units": num_units, "embedding_dim": embedding_dim, "hidden_size": hidden_size,
                       "num_layers": num_layers, "num_heads": num_heads, "dropout": dropout, "max_len": max_len}
        self.embed = nn.Embedding(num_units + 2, embedding_dim, padding_idx=self.pad)
        self.position = nn.Embedding(max_len, embedding_dim)
        layer = nn.TransformerEncoderLayer(embedding_dim, num_heads, hidden_size, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embedding_dim)
        self.head = nn.Linear(embedding_dim, num_units)

    def hidden(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``(B, T, D)``; position t sees positions <= t only."""
        t = inputs.shape[1]
        if t > self.max_len:
            raise ValueError(f"input of {t} tokens is longer than the model's max_len {self.max_len}")
        x = self.embed(inputs) + self.position(torch.arange(t, device=inputs.device))
        causal = nn.Transformer.generate_square_subsequent_mask(t, device=inputs.device, dtype=x.dtype)
        pad = None
        if lengths is not None:
            pad = torch.arange(t, device=inputs.device)[None, :] >= lengths.to(inputs.device)[:, None]
            pad = torch.zeros(pad.shape, dtype=x.dtype, device=x.device).masked_fill(pad, float("-inf"))
        return self.norm(self.encoder(x, mask=causal, src_key_padding_mask=pad, is_causal=True))

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, k)`` of the real positions, in the same packed order as :class:`LSTMUnitLM`."""
        h = self.hidden(inputs, lengths)
        idx = packed_index(lengths, inputs.shape[1]).to(h.device)
        return self.head(h.reshape(-1, h.shape[-1])[idx])

    def forward_padded(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(inputs))

    def step(self, tokens: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """Feed ``tokens`` ``(B, S)``; the state is the prefix so far (recomputed: no cache)."""
        prefix = tokens if state is None else torch.cat([state, tokens], dim=1)
        logits = self.head(self.hidden(prefix[:, -self.max_len :]))
        return logits[:, -tokens.shape[1] :], prefix


#: architectures by name (``--arch``)
ARCHITECTURES: dict[str, type[nn.Module]] = {"lstm": LSTMUnitLM, "transformer": TransformerUnitLM}


def build_lm(arch: str, num_units: int, embedding_dim: int, hidden_size: int, num_layers: int, dropout: float,
             num_heads: int = 4, max_len: int = 2048) -> nn.Module:
    """The LM named ``arch`` (``lstm`` or ``transformer``) for ``num_units`` units."""
    if arch == "lstm":
        return LSTMUnitLM(num_units, embedding_dim, hidden_size, num_layers, dropout)
    if arch == "transformer":
        return TransformerUnitLM(num_units, embedding_dim, hidden_size, num_layers, num_heads, dropout, max_len)
    raise ValueError(f"unknown LM architecture {arch!r}: use one of {', '.join(ARCHITECTURES)}")
