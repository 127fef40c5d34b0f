"""Scoring many prompts that share prefixes, computing every shared token once (the transformers engine's
prefix cache).

A labeler's prompts share most of their tokens: every prompt starts with the same preamble, both orders
of a pair share the text before the first candidate, and the continuations asked for ("1", "2") share the
whole prompt. Put the token sequences in a trie: each trie node's tokens are computed once.

``plan(seqs, last, row_tokens)`` turns the trie into forward passes over one KV cache, in order:

- ``Row``: one forward pass of up to about ``row_tokens`` tokens on top of the cache: small subtrees (a
  pair's two orders stay together) packed depth first, each node's tokens once. A token attends to the
  cache, to its own node's earlier tokens and to its ancestors' tokens, nothing else (``Row.allowed``);
  its position id is its depth in the trie. A node too big to pack (the common trunk, a long shared
  preamble) opens a row of its own as the row's first node: its ``keep`` tokens stay in the cache for
  every later op below it, and its children fill the rest of that row (one big pass, not a short one
  for the node and more for its children: CPU matmuls are slow on few rows). The rest of a row's keys
  and values are dropped after it;
- ``Pop``: drops a row's kept tokens from the cache when their subtree is done.

Every token so sees exactly the inputs it has in its own unpadded sequence: the logits equal those of
one sequence per forward, up to float rounding. Each op's ``reads`` lists (sequence, slot, index): the
logits at ``index`` of the op are the sequence's ``slot``-th of its last ``last`` positions.
Pure Python (torch only in ``Row.allowed``); ``hf_engine`` runs the ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Node:
    tokens: list[int] = field(default_factory=list)
    children: dict[int, _Node] = field(default_factory=dict)  # first token -> child
    ends: list[int] = field(default_factory=list)  # indices of the sequences ending in this node


Read = tuple[int, int, int]  # (sequence index, slot among its last `last` positions, index in the op)


@dataclass
class Pop:
    """Drop the last ``n`` tokens from the cache (a row's kept tokens, once their subtree is done)."""

    n: int


@dataclass
class Row:
    """One packed forward pass on top of the cache.

    input_ids, position_ids: the row's tokens and their positions (their depth in the trie);
    node: which trie node each token belongs to (a node's tokens are contiguous, parents first);
    parent: each node's parent node (-1: the cache); reads: the logits to read;
    keep: the row's first ``keep`` tokens (all of node 0, whose parent is the cache) stay in the cache.
    """

    input_ids: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    node: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    keep: int = 0

    def spans(self) -> list[tuple[int, int]]:
        """(start, end) of each node's tokens in the row."""
        out = [(0, 0)] * len(self.parent)
        start = 0
        for k in range(1, len(self.node) + 1):
            if k == len(self.node) or self.node[k] != self.node[start]:
                out[self.node[start]] = (start, k)
                start = k
        return out

    def allowed(self) -> Any:
        """[T, T] bool tensor: may token i attend to token j (earlier in its own node, or in an ancestor)?"""
        import torch

        n_nodes = len(self.parent)
        anc = torch.eye(n_nodes, dtype=torch.bool)  # anc[a, b]: b is a or an ancestor of a
        for a in range(n_nodes):  # parents come before children: their rows are complete
            p = self.parent[a]
            if p >= 0:
                anc[a] |= anc[p]
        node = torch.tensor(self.node, dtype=torch.long)
        t = node.shape[0]
        causal = torch.ones(t, t, dtype=torch.bool).tril_()
        return causal & anc[node[:, None], node[None, :]]


def common_prefix(seqs: list[list[int]]) -> int:
    """Length of the prefix all of ``seqs`` share."""
    first, n = seqs[0], min(len(s) for s in seqs)
    for k in range(n):
        t = first[k]
        if any(s[k] != t for s in seqs):
            return k
    return n


def _build(seqs: list[list[int]], start: int) -> _Node:
    """The trie of ``seqs[i][start:]``; chains are compressed into one node's ``tokens``."""
    root = _Node()
    for i, s in enumerate(seqs):
        node, k = root, start
        while k < len(s):
            child = node.children.get(s[k])
            if child is None:
                child = _Node(tokens=list(s[k:]))
                node.children[s[k]] = child
                node = child
                break
            j = 0  # walk the child's tokens as far as they match; split it where they stop matching
            while j < len(child.tokens) and k < len(s) and child.tokens[j] == s[k]:
                j += 1
                k += 1
            if j < len(child.tokens):
                tail = _Node(tokens=child.tokens[j:], children=child.children, ends=child.ends)
                child.tokens, child.children, child.ends = child.tokens[:j], {tail.tokens[0]: tail}, []
            node = child
        node.ends.append(i)
    return root


def _size(node: _Node) -> int:
    return len(node.tokens) + sum(_size(c) for c in node.children.values())


class _Planner:
    def __init__(self, seqs: list[list[int]], last: int, row_tokens: int) -> None:
        self.seqs, self.last, self.row_tokens = seqs, last, row_tokens
        self.ops: list[Row | Pop] = []
        self.trail: list[tuple[int, int]] = []  # (op index, index in op) of each token on the current path

    def _ends(self, node: _Node) -> None:
        for i in node.ends:
            tail = self.trail[-self.last:]
            for slot, (op, idx) in enumerate(tail):
                target = self.ops[op]
                assert isinstance(target, Row)  # the trail holds only ops that compute logits
                target.reads.append((i, slot, idx))

    def extend(self, node: _Node, depth: int) -> None:
        """``node`` opens a row and stays in the cache (``keep``) while its children run; they fill that
        row first, then more rows; a Pop drops the node's tokens after its subtree."""
        row = Row()
        self.ops.append(row)
        self._emit(row, len(self.ops) - 1, node, -1, depth, recurse=False)
        row.keep = len(node.tokens)
        self.children(node, depth + len(node.tokens), row)
        del self.trail[len(self.trail) - len(node.tokens):]
        if node.tokens:
            self.ops.append(Pop(len(node.tokens)))

    def children(self, node: _Node, depth: int, row: Row) -> None:
        """Packs ``node``'s small subtrees into ``row`` (whose node 0 is ``node``) and new rows on top of
        the cache; rows of about equal size, so the last one is not a short, slow pass."""
        subs = [(sub, _size(sub)) for sub in node.children.values()]
        small = sum(size for _, size in subs if size <= self.row_tokens) + len(row.input_ids)
        target = small / max(1, -(-small // self.row_tokens))  # ceil(small / budget) rows of equal size
        k = len(self.ops) - 1
        for sub, size in subs:
            if size > self.row_tokens:
                self.extend(sub, depth)  # its ops come after `row`: the cache is the same when row runs
                continue
            used = len(row.input_ids)
            if used and (used + size > self.row_tokens or used >= target):
                row = Row()
                self.ops.append(row)
                k = len(self.ops) - 1
            self._emit(row, k, sub, 0 if row.keep else -1, depth)

    def _emit(self, row: Row, k: int, node: _Node, parent: int, depth: int, recurse: bool = True) -> None:
        """Appends ``node`` (and, with ``recurse``, its subtree) to ``row`` (op ``k``), under the row's
        node ``parent``; its tokens join the trail, and leave it after the subtree unless not ``recurse``."""
        me = len(row.parent)
        row.parent.append(parent)
        for j, t in enumerate(node.tokens):
            self.trail.append((k, len(row.input_ids)))
            row.input_ids.append(t)
            row.position_ids.append(depth + j)
            row.node.append(me)
        self._ends(node)
        if recurse:
            for child in node.children.values():
                self._emit(row, k, child, me, depth + len(node.tokens))
            del self.trail[len(self.trail) - len(node.tokens):]


def plan(seqs: list[list[int]], last: int, row_tokens: int) -> list[Row | Pop]:
    """The forward passes that score ``seqs`` (token-id lists, each at least ``last`` long), each shared
    token once: the common trunk kept in the cache by the first Row, then Rows of subtrees up to about
    ``row_tokens`` tokens, a kept node (then its Pop) for each subtree bigger than that. Raises
    ValueError for a too-short sequence."""
    if not seqs:
        return []
    if any(len(s) < last for s in seqs):
        raise ValueError(f"every sequence needs at least {last} tokens")
    trunk = common_prefix(seqs)
    root = _build(seqs, trunk)
    root.tokens = seqs[0][:trunk]
    planner = _Planner(seqs, last, row_tokens)
    planner.extend(root, 0)
    return [op for op in planner.ops if not isinstance(op, Row) or op.input_ids]  # no trunk: an empty row
