"""Scoring many prompts that share prefixes, computing every shared token once (the transformers engine's
prefix cache).

A labeler's prompts share most of their tokens: every prompt starts with the same preamble, both orders
of a pair share the text before the first candidate, and the continuations asked for ("1", "2") share the
whole prompt. Put the token sequences in a trie: each trie node's tokens are computed once.

``plan(seqs, last, row_tokens)`` turns the trie into forward passes over one KV cache, in order:

- ``Extend``: a node too big to pack (the common trunk, a long shared preamble) runs alone on top of the
  cache, causally, and its keys and values stay there for everything below it;
- ``Row``: small subtrees (up to ``row_tokens`` tokens; a pair's two orders stay together) packed into
  one row: each node's tokens once, depth first. A token attends to the cache, to its own node's earlier
  tokens and to its ancestors' tokens, nothing else (``Row.allowed``); its position id is its depth in
  the trie. The row's keys and values are dropped after it;
- ``Pop``: drops an Extend's tokens from the cache when its subtree is done.

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
class Extend:
    """Tokens appended to the cache causally: input_ids, their position_ids, and the logits to read."""

    input_ids: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)


@dataclass
class Pop:
    """Drop the last ``n`` tokens from the cache (an Extend whose subtree is done)."""

    n: int


@dataclass
class Row:
    """One packed forward pass on top of the cache.

    input_ids, position_ids: the row's tokens and their positions (their depth in the trie);
    node: which trie node each token belongs to; parent: each node's parent node (-1: the cache);
    reads: the logits to read.
    """

    input_ids: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    node: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)

    def allowed(self) -> Any:
        """[T, T] bool tensor: may token i attend to token j (earlier in its own node, or in an ancestor)?"""
        import torch

        n_nodes = len(self.parent)
        anc = torch.eye(n_nodes, dtype=torch.bool)  # anc[a, b]: b is a or an ancestor of a
        for a in range(n_nodes):  # parents come before children: their rows are complete
            p = self.parent[a]
            if p >= 0:
                anc[a] |= anc[p]
        node = torch.tensor(self.node)
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
        self.ops: list[Extend | Row | Pop] = []
        self.trail: list[tuple[int, int]] = []  # (op index, index in op) of each token on the current path

    def _ends(self, node: _Node) -> None:
        for i in node.ends:
            tail = self.trail[-self.last:]
            for slot, (op, idx) in enumerate(tail):
                target = self.ops[op]
                assert not isinstance(target, Pop)  # the trail holds only ops that compute logits
                target.reads.append((i, slot, idx))

    def extend(self, node: _Node, depth: int) -> None:
        op = Extend(input_ids=list(node.tokens), position_ids=list(range(depth, depth + len(node.tokens))))
        self.ops.append(op)
        k = len(self.ops) - 1
        self.trail += [(k, j) for j in range(len(node.tokens))]
        self._ends(node)
        self.children(node, depth + len(node.tokens))
        if node.tokens:
            self.ops.append(Pop(len(node.tokens)))
            del self.trail[len(self.trail) - len(node.tokens):]

    def children(self, node: _Node, depth: int) -> None:
        row: Row | None = None
        for sub in node.children.values():
            size = _size(sub)
            if size > self.row_tokens:
                row = None
                self.extend(sub, depth)
                continue
            if row is None or len(row.input_ids) + size > self.row_tokens:
                row = Row()
                self.ops.append(row)
            self._emit(row, len(self.ops) - 1, sub, -1, depth)

    def _emit(self, row: Row, k: int, node: _Node, parent: int, depth: int) -> None:
        me = len(row.parent)
        row.parent.append(parent)
        for j, t in enumerate(node.tokens):
            self.trail.append((k, len(row.input_ids)))
            row.input_ids.append(t)
            row.position_ids.append(depth + j)
            row.node.append(me)
        self._ends(node)
        for child in node.children.values():
            self._emit(row, k, child, me, depth + len(node.tokens))
        del self.trail[len(self.trail) - len(node.tokens):]


def plan(seqs: list[list[int]], last: int, row_tokens: int) -> list[Extend | Row | Pop]:
    """The forward passes that score ``seqs`` (token-id lists, each at least ``last`` long), each shared
    token once: the common trunk as an Extend, then Rows of subtrees up to ``row_tokens`` tokens, and an
    Extend (then its Pop) for each subtree bigger than that. Raises ValueError for a too-short sequence."""
    if not seqs:
        return []
    if any(len(s) < last for s in seqs):
        raise ValueError(f"every sequence needs at least {last} tokens")
    trunk = common_prefix(seqs)
    root = _build(seqs, trunk)
    root.tokens = seqs[0][:trunk]
    planner = _Planner(seqs, last, row_tokens)
    planner.extend(root, 0)
    return planner.ops
