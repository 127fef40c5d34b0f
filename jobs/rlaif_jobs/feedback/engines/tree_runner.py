"""Runs ``prefix_tree`` rows through a Llama-family decoder (llama, qwen2) with its own layer loop: the
transformers engine's fast path for shared-prefix scoring.

Why not ``model(...)`` with a 4-D mask: on a CPU most of that time is not matrix products. This loop
computes the same function (same weights, same order of operations per token, float rounding apart):

- every matmul of a row is ONE GEMM over all its tokens, q|k|v and gate|up fused (wide GEMMs run far
  closer to the CPU's peak than three narrow ones); residual adds ride in the GEMM (``addmm``);
- attention runs per trie node, against that node's keys only (the cache, its ancestors, its own earlier
  tokens): no [T, T] mask, no masked-out work; grouped-query heads share their key/value tensors;
- keys and values live in one preallocated buffer per call: a row writes its own at the cache's end, a
  kept prefix stays by moving the cache's end, a Pop moves it back. Nothing is concatenated or cropped.

``problem(model)``: None if this loop computes ``model`` exactly, else why not (the engine then runs
``model(...)``). ``TreeRunner(model)``: fuses the projection weights in place (the module weights become
views of the fused tensors: no extra memory, ``generate`` unchanged). ``start(ops)``, ``row(op, keep)``
(logits [len(keep), vocab] of the row's positions ``keep``), ``pop(n)``: the engine's loop.
"""

from __future__ import annotations

from typing import Any

from rlaif_jobs.feedback.engines.prefix_tree import Pop, Row

MODEL_TYPES = ("llama", "qwen2")  # decoders whose layer is: norm, rope attention, norm, gated MLP


def problem(model: Any) -> str | None:
    """None if ``model`` is a decoder this loop computes exactly, else why not."""
    cfg = getattr(model, "config", None)
    kind = getattr(cfg, "model_type", None)
    if kind not in MODEL_TYPES:
        return f"model type {kind!r} is not one of {MODEL_TYPES}"
    if any(t != "full_attention" for t in getattr(cfg, "layer_types", None) or []):
        return "sliding-window layers"
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "rotary_emb") or not hasattr(model, "lm_head"):
        return "not the expected module layout"
    for layer in inner.layers:
        attn = layer.self_attn
        if hasattr(attn, "q_norm") or not all(hasattr(attn, p) for p in ("q_proj", "k_proj", "v_proj", "o_proj")):
            return "attention without the plain q/k/v/o projections"
        if not all(hasattr(layer.mlp, p) for p in ("gate_proj", "up_proj", "down_proj", "act_fn")):
            return "not a gated MLP"
    return None


def _fuse(linears: list[Any]) -> tuple[Any, Any]:
    """One weight (and bias, or None) for several nn.Linear on the same input; each module's weight
    becomes a view of it, so the model is unchanged and no memory is duplicated."""
    import torch

    weight = torch.cat([m.weight.detach() for m in linears])
    has_bias = [m.bias is not None for m in linears]
    bias = torch.cat([m.bias.detach() if m.bias is not None else m.weight.new_zeros(m.out_features)
                      for m in linears]) if any(has_bias) else None
    row = 0
    for m in linears:
        n = m.out_features
        m.weight = torch.nn.Parameter(weight[row:row + n], requires_grad=False)
        if m.bias is not None:
            m.bias = torch.nn.Parameter(bias[row:row + n], requires_grad=False)  # type: ignore[index]
        row += n
    return weight, bias


class _Layer:
    """One decoder layer's tensors."""

    def __init__(self, layer: Any) -> None:
        attn, mlp = layer.self_attn, layer.mlp
        self.qkv_w, self.qkv_b = _fuse([attn.q_proj, attn.k_proj, attn.v_proj])
        self.gu_w, self.gu_b = _fuse([mlp.gate_proj, mlp.up_proj])
        self.o, self.down, self.act = attn.o_proj, mlp.down_proj, mlp.act_fn
        self.ln1, self.ln2 = layer.input_layernorm, layer.post_attention_layernorm
        self.scale = attn.scaling


class TreeRunner:
    """The layer loop over prefix_tree rows (see the module docstring)."""

    def __init__(self, model: Any) -> None:
        import torch

        cfg = model.config
        self.model = model
        self.heads, self.kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        with torch.no_grad():
            self.layers = [_Layer(layer) for layer in model.model.layers[:cfg.num_hidden_layers]]
        self.inter = self.layers[0].gu_w.shape[0] // 2
        self.silu = type(self.layers[0].act).__name__ in ("SiLUActivation", "SiLU")
        self.kv_buf: Any = None  # [layers, 2 (k, v), kv heads, positions, dim]
        self.ctx = 0

    def start(self, ops: list[Row | Pop]) -> None:
        """Allocates the key/value buffers for ``ops`` (as many positions as the cache ever holds)."""
        import torch

        ctx = cap = 0
        for op in ops:
            if isinstance(op, Pop):
                ctx -= op.n
            else:
                cap, ctx = max(cap, ctx + len(op.input_ids)), ctx + op.keep
        p = next(self.model.parameters())
        self.kv_buf = torch.empty((len(self.layers), 2, self.kv, cap, self.dim), dtype=p.dtype, device=p.device)
        self.ctx = 0

    def pop(self, n: int) -> None:
        self.ctx -= n

    def finish(self) -> None:
        self.kv_buf = None

    def _nodes(self, op: Row) -> list[tuple[int, int, Any, Any]]:
        """Per node with tokens: (start, end, key positions in the buffer (a slice if contiguous, else
        an index tensor), additive mask [1, 1, L, S]): the cache, the ancestors, then its own tokens,
        causal among those. Built once per row, used by every layer."""
        import torch

        p = next(self.model.parameters())
        spans, ctx = op.spans(), self.ctx
        out = []
        for n, (s, e) in enumerate(spans):
            if s == e:
                continue
            chain, a = [], op.parent[n]
            while a >= 0:
                chain.append(spans[a])
                a = op.parent[a]
            ranges = [(0, ctx)] + [(ctx + s0, ctx + e0) for s0, e0 in reversed(chain)] + [(ctx + s, ctx + e)]
            ranges = [r for r in ranges if r[1] > r[0]]
            contiguous = ranges[0][0] == 0 and all(r[0] == q[1] for q, r in zip(ranges, ranges[1:], strict=False))
            keys: Any = (slice(0, ranges[-1][1]) if contiguous else
                         torch.cat([torch.arange(a0, b0) for a0, b0 in ranges]).to(p.device))
            length = e - s
            width = sum(b0 - a0 for a0, b0 in ranges)
            mask = torch.zeros(length, width, dtype=p.dtype, device=p.device)
            mask[:, width - length:] = torch.full((length, length), float("-inf"), dtype=p.dtype,
                                                  device=p.device).triu_(1)
            out.append((s, e, keys, mask[None, None]))
        return out

    def _attention(self, q: Any, layer: int, nodes: list, out: Any, scale: float) -> None:
        """Writes each node's attention output into ``out`` ([T, heads * dim]); q: [T, heads, dim]."""
        import torch.nn.functional as F  # noqa: N812

        heads, dim = self.heads, self.dim
        kv_all = self.kv_buf[layer]
        for s, e, keys, mask in nodes:
            # keys and values of a node in one gather (one op, not two: each op has a fixed cost)
            kv = kv_all[:, :, keys] if isinstance(keys, slice) else kv_all.index_select(2, keys)
            k, v = kv[0], kv[1]
            # 4-D inputs (CPU's flash kernel; 3-D ones take the slow math path); query heads share their
            # kv head's keys (enable_gqa: no repeated keys); q stays a strided view, no copy
            o = F.scaled_dot_product_attention(q[s:e].transpose(0, 1)[None], k[None], v[None], attn_mask=mask,
                                               scale=scale, enable_gqa=True)
            out[s:e].view(e - s, heads, dim).copy_(o[0].transpose(0, 1))

    def _norm(self, norm: Any, x: Any) -> Any:
        import torch
        import torch.nn.functional as F  # noqa: N812

        if x.dtype == torch.float32:  # the module's float32 computation as one fused kernel
            return F.rms_norm(x, (x.shape[-1],), norm.weight, norm.variance_epsilon)
        return norm(x)

    def row(self, op: Row, keep: list[int]) -> Any:
        """Runs ``op`` on top of the cache; returns the logits [len(keep), vocab] at positions ``keep``."""
        import torch
        import torch.nn.functional as F  # noqa: N812

        model, ctx, t = self.model, self.ctx, len(op.input_ids)
        heads, kv, dim, inter = self.heads, self.kv, self.dim, self.inter
        device = self.kv_buf.device
        ids = torch.tensor(op.input_ids, device=device)
        x = model.model.embed_tokens(ids)  # [T, hidden]
        pos = torch.tensor([op.position_ids], device=device)
        cos, sin = model.model.rotary_emb(x[None], pos)
        half = dim // 2
        cos, sin = cos[0, :, None, :half], sin[0, :, None, :half]  # rope's two halves use the same angles
        nodes = self._nodes(op)
        attn = x.new_empty(t, heads * dim)
        qk = x.new_empty(t, heads + kv, dim)
        for i, lay in enumerate(self.layers):
            h = self._norm(lay.ln1, x)
            qkv = F.linear(h, lay.qkv_w, lay.qkv_b)
            raw = qkv[:, :(heads + kv) * dim].view(t, heads + kv, dim)
            # rotary embedding of q and k at once: x1*cos - x2*sin | x2*cos + x1*sin (== rotate_half form)
            x1, x2 = raw[..., :half], raw[..., half:]
            torch.mul(x1, cos, out=qk[..., :half]).addcmul_(x2, sin, value=-1)
            torch.mul(x2, cos, out=qk[..., half:]).addcmul_(x1, sin)
            self.kv_buf[i, 0, :, ctx:ctx + t].copy_(qk[:, heads:].transpose(0, 1))
            self.kv_buf[i, 1, :, ctx:ctx + t].copy_(qkv[:, (heads + kv) * dim:].view(t, kv, dim).transpose(0, 1))
            self._attention(qk[:, :heads], i, nodes, attn, lay.scale)
            x = torch.addmm(x, attn, lay.o.weight.t())  # residual + o_proj in one GEMM
            if lay.o.bias is not None:
                x += lay.o.bias
            gu = F.linear(self._norm(lay.ln2, x), lay.gu_w, lay.gu_b)
            gate, up = gu[:, :inter], gu[:, inter:]
            act = F.silu(gate, inplace=True) if self.silu else lay.act(gate)
            x = torch.addmm(x, act.mul_(up), lay.down.weight.t())  # residual + down_proj in one GEMM
            if lay.down.bias is not None:
                x += lay.down.bias
        self.ctx += op.keep  # the kept tokens' keys and values are already at the cache's end
        if not keep:
            return x.new_empty(0, model.lm_head.out_features)
        last = model.model.norm(x[torch.tensor(keep, device=device)])
        return model.lm_head(last)
