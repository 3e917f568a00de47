"""models.yaml texts for the hardening tests: big maps, and files that are hostile
(expanding aliases, deep nesting)."""

from __future__ import annotations


def big_map(n: int = 3000, *, tag: str = "alias") -> str:
    """A hand-written-looking map of ``n`` models (3,000 take about 150 KB)."""
    out = ["# a big model map", "enable: true", "models:"]
    for i in range(n):
        if i % 100 == 0:
            out.append(f"  # --- group {i // 100} ---")
        out.append(f"  bot-{i}:")
        out.append(f"    mapping: {tag}-{i}   # note {i}")
        if i % 7 == 0:
            out.append("    enable: false")
        if i % 11 == 0:
            out.append("    parameters: {thinking_budget: 1024}")
    out.append("custom_models:")
    out += [f"  - id: custom-{i}" for i in range(20)]
    return "\n".join(out) + "\n"


def laughs(levels: int = 9, width: int = 9, seed: str = "lol") -> str:
    """A "billion laughs" under a model's parameters: each level repeats the one
    before ``width`` times (9 levels of 9: about 0.6 KB that mean gigabytes)."""
    lines = ["enable: true", "models:", "  GPT-4o:", "    parameters:",
             f'      l0: &l0 "{seed}"']
    for i in range(1, levels + 1):
        lines.append(f"      l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def deep(levels: int = 260, *, flow: bool = True) -> str:
    """A model's parameters nested ``levels`` deep (260 in flow style: about 0.5 KB)."""
    head = "enable: true\nmodels:\n  GPT-4o:\n    parameters:\n"
    if flow:
        return head + "      x: " + "[" * levels + "]" * levels + "\n"
    body = "".join("  " * (3 + i) + f"k{i}:\n" for i in range(levels))
    return head + body + "  " * (3 + levels) + "v: 1\n"
