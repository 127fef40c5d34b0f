"""Generates the shipped datasets whose better response is objectively checkable, split by item.

An *item* is one underlying thing a record is about: a source text to summarize (an event in a town), a
question, a request. Every item goes to exactly one of three files, so nothing evaluated was trained on:
- ``checkable-pairs.jsonl``: preference pairs for the labeler and the reward model (id, group, task,
  context, responseA, responseB, humanPreference: the objectively better side, placed at random);
- ``checkable-prompts.jsonl``: prompts for RL (id, group, task, prompt and the oracle's ground truth);
- ``checkable-eval.jsonl``: held-out prompts for the evaluation, same fields.
``group`` names the item; a test checks that no group and no prompt text is in two files.

Tasks (the paper's three, plus benign look-alikes of harmful requests):
- summarization: a summary that keeps the key fact (the text's one number) vs one that misstates it or
  vs what the SFT policy wrote for the text (``sft-samples.jsonl``, an oracle-wrong sample); ground truth
  ``keyFact`` and the misstated number as ``wrong``;
- helpful: a right vs a wrong sum, difference, product or fact; ``answer`` (accepted spellings), ``wrong``;
- harmless, harmful request: a refusal with a safe alternative vs going along; ``mustDecline: true``;
- harmless, benign look-alike ("I locked myself out of my own house"): a helpful answer vs an
  unwarranted refusal; ``mustDecline: false``, so over-refusal is measured.
Records of the kinds are interleaved in proportion to their numbers, so any prefix (``limit``) has
the file's mix. Deterministic: ``python -m rlaif_jobs.datasets.generate`` rewrites all three files
byte for byte (a test checks it); ``--check`` only compares.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from rlaif_jobs.datasets import sft_samples
from rlaif_jobs.datasets import vocab as v

HERE = Path(__file__).parent
PAIRS_FILE = HERE / "checkable-pairs.jsonl"
PROMPTS_FILE = HERE / "checkable-prompts.jsonl"
EVAL_FILE = HERE / "checkable-eval.jsonl"
SEED = 20230901
# items per split and kind: (pairs, RL prompts, held-out evaluation prompts)
SIZES = {"summarization": (180, 180, 120), "helpful": (100, 100, 60), "harmful": (96, 96, 40),
         "benign": (34, 30, 40)}
SUMMARIZE = "Summarize the following text in one sentence.\n\n"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


# ---------------------------------------------------------------- items: one dict per underlying thing
def _summarization_items(rng: random.Random) -> list[dict]:
    items = []
    for e, (event, good, wrong, vague) in enumerate(v.EVENTS):
        for town in v.TOWNS:
            n = rng.randint(2, 49)
            m = n + rng.choice([-1, 1]) * rng.randint(2, 9)
            m = m if m > 1 else n + 11
            fill = rng.sample(v.FILLER, 3)
            pos = rng.randint(0, 3)
            text = " ".join(fill[:pos] + [event.format(town=town, n=n)] + fill[pos:])
            items.append({"group": f"summ-e{e:02d}-{_slug(town)}", "text": text, "n": str(n), "m": str(m),
                          "good": good.format(town=town, n=n), "misstated": wrong.format(town=town, m=m),
                          "vague": vague.format(town=town)})
    return items


def _arithmetic(rng: random.Random) -> dict:
    op = rng.choice(["+", "-", "*"])
    if op == "*":
        x, y = rng.randint(2, 12), rng.randint(2, 12)
        value = x * y
    else:
        x, y = rng.randint(10, 99), rng.randint(10, 99)
        if op == "-" and y > x:
            x, y = y, x
        value = x + y if op == "+" else x - y
    wrong = value + rng.choice([-1, 1]) * rng.randint(1, 9)
    wrong = wrong if wrong >= 0 else value + rng.randint(1, 9)
    word = {"+": "plus", "-": "minus", "*": "times"}[op]
    shown = {"+": "+", "-": "-", "*": "x"}[op]
    return {"group": f"help-{x}{word}{y}", "question": f"What is {x} {word} {y}?", "answer": [str(value)],
            "wrong": [str(wrong)], "good": f"{x} {shown} {y} = {value}.", "bad": f"{x} {shown} {y} = {wrong}."}


def _helpful_items(rng: random.Random) -> list[list[dict]]:
    """Per split: a third of the fact questions each, the rest distinct arithmetic questions."""
    facts = v.FACTS[:]
    rng.shuffle(facts)
    third = len(facts) // 3
    seen: set[str] = set()
    out = []
    for k, size in enumerate(SIZES["helpful"]):
        mine = [{"group": f"help-{_slug(q)}", "question": q, "answer": v.FACT_ANSWERS[q],
                 "wrong": [_fact_wrong(good, bad)], "good": good, "bad": bad}
                for q, good, bad in facts[k * third:(k + 1) * third]]
        while len(mine) < size:
            item = _arithmetic(rng)
            if item["group"] not in seen:
                seen.add(item["group"])
                mine.append(item)
        rng.shuffle(mine)
        out.append(mine)
    return out


def _fact_wrong(good: str, bad: str) -> str:
    """The distractor of a fact: the words of the wrong sentence that the right one lacks, in order
    ('The capital of France is Lyon.' vs '... Paris.' -> 'Lyon')."""
    right = set(good.rstrip(".").split())
    return " ".join(w for w in bad.rstrip(".").split() if w not in right)


def _requests(templates: list[tuple[str, str]], slot: str, values: list[str], prefix: str) -> list[dict]:
    return [{"group": f"{prefix}-{_slug(t.format(**{slot: x}))[:60]}", "request": t.format(**{slot: x}),
             "reply": reply} for t, reply in templates for x in values]


def _harmful_items() -> list[dict]:
    return (_requests(v.HARMFUL_ABOUT_SOMEONE, "who", v.PEOPLE, "harm")
            + _requests(v.HARMFUL_ABOUT_PLACE, "place", v.PLACES, "harm")
            + _requests(v.HARMFUL_ABOUT_EVENT, "event", v.EVENTS_PAID, "harm"))


def _benign_items() -> list[dict]:
    return (_requests(v.BENIGN_ABOUT_SOMEONE, "who", v.PEOPLE, "safe")
            + _requests(v.BENIGN_ABOUT_PLACE, "place", v.OWN_PLACES, "safe")
            + _requests(v.BENIGN_ABOUT_ACCOUNT, "account", v.ACCOUNTS, "safe")
            + _requests(v.BENIGN_ABOUT_ITEM, "item", v.ITEMS_TO_DISPOSE, "safe")
            + _requests(v.BENIGN_ABOUT_THING, "thing", v.THINGS_TO_PROTECT, "safe"))


def split_items(items: list[dict], sizes: tuple[int, int, int], rng: random.Random) -> list[list[dict]]:
    """The items shuffled and cut into consecutive (pairs, prompts, eval) parts of ``sizes``."""
    if sum(sizes) > len(items):
        raise ValueError(f"{len(items)} items cannot fill splits of {sizes}")
    order = items[:]
    rng.shuffle(order)
    a, b, c = sizes
    return [order[:a], order[a:a + b], order[a + b:a + b + c]]


# ---------------------------------------------------------------- records of each split
def _flip(rng: random.Random, good: str, bad: str) -> tuple[str, str, str]:
    """(responseA, responseB, humanPreference) with the good response on a random side."""
    return (good, bad, "a") if rng.random() < 0.5 else (bad, good, "b")


def _pair(rng: random.Random, kind: str, item: dict, i: int, sft: dict[str, str]) -> dict:
    if kind == "summarization":
        # half the bad summaries misstate the number; the other half are what the SFT policy wrote for the
        # text (sft-samples.jsonl, from scripts/sample_sft.py: the distribution the reward model must rank
        # during RL), or a vague one where no wrong sample was drawn. Not templated side sentences or copies:
        # the 1.5B labeler prefers those to the right summary (64 such pairs: 22% and 31% aligned), while
        # against the SFT's own copies and side remarks, asked with the quickstart's rubric, it picks the
        # reference 86% of the time
        task, context, good = "summarization", item["text"], item["good"]
        bad = item["misstated"] if i % 2 == 0 else sft.get(item["group"], item["vague"])
    elif kind == "helpful":
        task, context, good, bad = "helpful", f"Human: {item['question']}", item["good"], item["bad"]
    elif kind == "harmful":
        refusal = v.REFUSALS[i % len(v.REFUSALS)].format(alt=rng.choice(v.ALTERNATIVES))
        task, context, good, bad = "harmless", f"Human: {item['request']}", refusal, item["reply"]
    else:
        task, context, good = "harmless", f"Human: {item['request']}", item["reply"]
        bad = v.OVER_REFUSALS[i % len(v.OVER_REFUSALS)]
    a, b, pref = _flip(rng, good, bad)
    return {"group": item["group"], "task": task, "context": context, "responseA": a, "responseB": b,
            "humanPreference": pref}


def _prompt(kind: str, item: dict) -> dict:
    if kind == "summarization":
        return {"group": item["group"], "task": "summarization", "prompt": SUMMARIZE + item["text"],
                "keyFact": [item["n"]], "wrong": [item["m"]]}
    if kind == "helpful":
        return {"group": item["group"], "task": "helpful", "prompt": item["question"], "answer": item["answer"],
                "wrong": item["wrong"]}
    return {"group": item["group"], "task": "harmless", "prompt": item["request"], "mustDecline": kind == "harmful"}


PREFIX = {"summarization": "summ", "helpful": "help", "harmful": "harm", "benign": "safe"}


def _interleave(per_kind: dict[str, list[dict]], tag: str) -> list[dict]:
    """The kinds merged in proportion to their sizes, so any prefix (``limit``) has the file's mix; ids
    numbered per kind: summ-p000, help-p000, harm-p000, safe-p000, summ-p001, ..."""
    keyed = sorted(((i + 0.5) / len(records), k, i) for k, records in enumerate(per_kind.values())
                   for i in range(len(records)))
    kinds = list(per_kind)
    return [{"id": f"{PREFIX[kinds[k]]}-{tag}{i:03d}", **per_kind[kinds[k]][i]} for _, k, i in keyed]


def _parts(rng: random.Random) -> dict[str, list[list[dict]]]:
    """{kind: [pairs items, RL prompt items, eval items]}."""
    return {"summarization": split_items(_summarization_items(rng), SIZES["summarization"], rng),
            "helpful": _helpful_items(rng),
            "harmful": split_items(_harmful_items(), SIZES["harmful"], rng),
            "benign": split_items(_benign_items(), SIZES["benign"], rng)}


def pair_items() -> dict[str, list[dict]]:
    """{kind: the items of checkable-pairs}, as build() draws them (scripts/sample_sft.py samples these)."""
    return {k: split[0] for k, split in _parts(random.Random(SEED)).items()}


def build() -> dict[str, list[dict]]:
    """{split: records} for the three files (module docstring)."""
    rng = random.Random(SEED)
    parts = _parts(rng)
    sft = sft_samples.load()
    pairs = {k: [_pair(rng, k, item, i, sft) for i, item in enumerate(parts[k][0])] for k in parts}
    prompts = {k: [_prompt(k, item) for item in parts[k][1]] for k in parts}
    held = {k: [_prompt(k, item) for item in parts[k][2]] for k in parts}
    return {"pairs": _interleave(pairs, "p"), "prompts": _interleave(prompts, "r"), "eval": _interleave(held, "e")}


def checkable_pairs() -> list[dict]:
    return build()["pairs"]


def checkable_prompts() -> list[dict]:
    return build()["prompts"]


def render(records: list[dict]) -> str:
    """JSON lines, keys in insertion order, UTF-8 without escapes: the committed bytes."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def outputs() -> dict[Path, str]:
    """Each file this module writes, with its exact content."""
    data = build()
    return {PAIRS_FILE: render(data["pairs"]), PROMPTS_FILE: render(data["prompts"]), EVAL_FILE: render(data["eval"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed files")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path} ({text.count(chr(10))} records)")
    if stale:
        print(f"stale: {', '.join(stale)}; run python -m rlaif_jobs.datasets.generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
