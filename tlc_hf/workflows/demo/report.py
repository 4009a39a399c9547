"""The demo's summary and report.md: every sentence is built from a number in report.json."""

from __future__ import annotations

import time

from ...budget.duration import format_duration


def _ci(ci) -> str:
    return f"{ci[0]:.3f}-{ci[1]:.3f}"


def summarize(report: dict) -> list[str]:
    """The findings, one sentence each, in the order of the stages."""
    lines = [*_claim1(report), *_finetuning(report), *_claim2(report)]
    if report.get("real_model"):
        lines += _real(report["real_model"])
    return lines


def _claim1(report: dict) -> list[str]:
    claim = report["claim1"]
    runs = {r["label"]: r for r in claim["runs"]}
    budget = format_duration(claim["budget_s"])
    if claim["not_past_unigram"]:
        return [
            f"Claim 1 not measured: {', '.join(claim['not_past_unigram'])} ended no better than unigram statistics "
            f"(perplexity {claim['unigram_perplexity']:.0f}) after {budget}, so they learned no context yet and a "
            "ranking would be noise; give the run a longer --budget."
        ]
    base = runs[claim["base"]]
    parts = [f"the base {base['label']} reached perplexity {base['final_perplexity']:.0f}"]
    for family, info in claim["families"].items():
        parts.append(
            f"the {family} family's {info['largest']} ({info['param_ratio']:.2f}x the parameters, "
            f"{info['step_cost_ratio']:.2f}x the time per step) {info['final_perplexity']:.0f}"
        )
    lines = [
        f"Claim 1 (train larger at equal time): after {budget} each, {'; '.join(parts)} "
        f"(unigram statistics: {claim['unigram_perplexity']:.0f})."
    ]
    families = claim["families"]
    if claim["winner_family"] in ("depth", "width"):
        won, lost = (
            families[claim["winner_family"]],
            families["width" if claim["winner_family"] == "depth" else "depth"],
        )
        lines.append(
            f"The {claim['winner_family']} family won on this hardware: {won['largest']} bought "
            f"{won['param_ratio'] / won['step_cost_ratio']:.2f}x the base's parameters per unit of step time, "
            f"{lost['largest']} {lost['param_ratio'] / lost['step_cost_ratio']:.2f}x."
        )
    elif claim["winner_family"] == "tie":
        lines.append("The depth and width families tied (their largest sizes within 3% perplexity of each other).")
    beat = [info["largest"] for info in families.values() if info["beat_base"]]
    if beat:
        lines.append(f"{', '.join(beat)} beat the smaller base at equal time: the paper's claim 1 held here.")
    else:
        steps = max(base["steps"] / runs[info["largest"]]["steps"] for info in families.values())
        lines.append(
            f"No larger size beat the base at equal time: on this hardware a larger step costs nearly in proportion "
            f"to the model, so the base took up to {steps:.1f}x more steps; the paper's claim is for hardware where a "
            "larger model costs much less than proportionally more per step (a GPU)."
        )
    return lines


def _finetuning(report: dict) -> list[str]:
    rows = report["finetuned"]
    budget = report["preset"]["finetune"]
    text = ", ".join(f"{k} {v['accuracy']:.3f} ({_ci(v['ci'])}, lr {v['learning_rate']:.1e})" for k, v in rows.items())
    lines = [f"Fine-tuned {budget} each on Rotten Tomatoes, test accuracy (95% CI): {text}."]
    learned = [(k, v["ci"][0]) for k, v in rows.items() if v["learned"]]
    if learned:
        low = min(learned, key=lambda item: item[1])
        above = "above" if low[1] > 0.6 else "not above"
        lines.append(
            f"Margin over the 0.6 line (the lower end of each 95% interval): "
            f"{', '.join(f'{k} {lo:.3f}' for k, lo in learned)}; the lowest, {low[0]}, is {above} 0.6."
        )
    least = report["preset"].get("min_finetune_steps", 0)
    busy = {k: v["steps"] for k, v in rows.items() if v.get("steps") is not None and v["steps"] < least}
    if busy:
        lines.append(
            f"Too few steps to judge: {', '.join(f'{k} got {n} steps' for k, n in busy.items())} in its {budget} "
            f"(this preset needs at least {least} for an accuracy to say something about a size): the machine was "
            "busy with other work or the budget is short. Rerun on a quiet machine or with a longer --budget."
        )
    failed = [k for k, v in rows.items() if not v["learned"]]
    if failed:
        lines.append(
            f"{', '.join(failed)} stayed at chance (the interval includes 0.5): a failure of this run, not a finding "
            "about the size; its claim 2 row is left out of the verdict."
        )
    return lines


def _claim2(report: dict) -> list[str]:
    claim = report["claim2"]
    lines = [
        f"Claim 2 (compress larger at equal bytes): under {claim['budget_mb']:.2f} MB (the base's fp32 size) the dense "
        f"base {claim['base']} scored {claim['base_accuracy']:.3f} ({_ci(claim['base_ci'])})"
        + (f" on {claim['evaluated_on']}." if claim.get("evaluated_on") else ".")
    ]
    verdicts = []
    for c in claim["comparisons"]:
        if not c["fits"]:
            lines.append(f"{c['size']} did not fit the budget even at the last rung of the ladder.")
            continue
        word = {True: "beat", False: "lost to", None: "did not separate from"}[c["beat_base"]]
        lines.append(
            f"{c['size']} fitted as {c['rung']} ({c['size_mb']:.2f} MB) and scored {c['accuracy']:.3f} "
            f"({_ci(c['ci'])}): {100 * c['change_vs_base']:+.1f} ± {100 * c['change_ci']:.1f} points against the "
            f"dense base, paired by example, so it {word} the smaller dense model."
        )
        if c["learned"]:
            verdicts.append((c["size"], c["beat_base"]))
    if verdicts:
        won = [s for s, v in verdicts if v]
        lost = [s for s, v in verdicts if v is False]
        if won:
            answer = f"yes for {', '.join(won)}"
        elif lost:
            answer = f"no: {', '.join(lost)} scored below it beyond the paired interval"
        else:
            on = claim.get("evaluated_on", f"{claim['rows'][0]['examples']} test reviews")
            answer = f"not resolved on {on} (no difference beyond the paired interval)"
        lines.append(f"Did the larger compressed model beat the smaller dense one? {answer}.")
    return lines


def _real(real: dict) -> list[str]:
    fp32 = real["frontier"][0]
    best = real["best"]
    return [
        f"Then compress a real model: all-MiniLM-L6-v2 fine-tuned {real['finetune_budget']} scored {fp32['accuracy']:.3f} "
        f"({_ci(fp32['ci'])}) at {fp32['size_mb']:.1f} MB; {real['recipe']} made it {real['smaller']:.2f}x smaller "
        f"({best['size_mb']:.1f} MB) and {real['speedup']:.2f}x faster (timed interleaved), accuracy "
        f"{best['accuracy']:.3f}: {100 * best['accuracy_change']:+.1f} ± {100 * best['change_ci']:.1f} points, paired by example."
    ]


def render_markdown(report: dict) -> str:
    """report.md: the summary, then one section per stage with its table and plot."""
    hw = report["hardware"]
    preset = report["preset"]
    lines = [
        "# Train Large, Then Compress: the main job",
        "",
        f"Preset `{preset['name']}`, measured {time.strftime('%Y-%m-%d')} on {hw.get('cpu')} "
        f"({', '.join(hw.get('cpu_flags', []))}; {hw.get('torch_threads')} threads{'; ' + hw['gpu'] if hw.get('gpu') else ''}), "
        f"{format_duration(report['wall_clock_s'])} end to end. Every number below is in `report.json`.",
        "",
        "## Summary",
        "",
        *[f"- {line}" for line in report["summary"]],
        "",
        "## Claim 1: at equal time, which size learns most?",
        "",
        f"Each size MLM-pretrained {preset['pretrain']} on {preset['pretrain_source']} reviews "
        f"(BPE, {preset['vocab_size']} tokens, blocks of {preset['block_size']}), learning rate scaled down with width "
        "and depth from the base's; perplexity on a fixed mask of the validation blocks.",
        "",
        "| size | family | params | LR | steps | tokens/s | time per step vs base | perplexity | past unigram |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    claim1 = report["claim1"]
    family_of = {}
    for family, info in claim1["families"].items():
        for label in info["members"]:
            family_of.setdefault(label, []).append(family)
    for r in claim1["runs"]:
        families = "base" if r["label"] == claim1["base"] else "/".join(family_of.get(r["label"], []))
        lines.append(
            f"| {r['label']} | {families} | {r['params'] / 1e6:.2f}M | {r['learning_rate']:.1e} | {r['steps']} | "
            f"{r['tokens_per_s']:.0f} | {r['step_cost_ratio']:.2f}x | {r['final_perplexity']:.1f} | "
            f"{'yes' if r['past_unigram'] else 'no'} |"
        )
    lines += [
        "",
        f"Unigram statistics of the evaluation tokens: perplexity {claim1['unigram_perplexity']:.1f}.",
        "",
        "![perplexity against time, depth and width families](curves.png)",
        "",
        "## Fine-tuning",
        "",
        "| size | learning rate | steps | test accuracy | 95% CI | learned |",
        "|---|---:|---:|---:|---|---|",
    ]
    for label, r in report["finetuned"].items():
        lines.append(
            f"| {label} | {r['learning_rate']:.1e} | {r.get('steps', '')} | {r['accuracy']:.3f} | {_ci(r['ci'])} | "
            f"{'yes' if r['learned'] else '**no**'} |"
        )
    claim2 = report["claim2"]
    lines += [
        "",
        f"## Claim 2: compressed to the same {claim2['budget_mb']:.2f} MB, which size is most accurate?",
        "",
        "| size | rung | size MB | fits | test accuracy | 95% CI |",
        "|---|---|---:|---|---:|---|",
    ]
    for r in claim2["rows"]:
        lines.append(
            f"| {r['size']} | {r['rung']} | {r['size_mb']:.3f} | {'yes' if r['fits'] else 'no'} | {r['accuracy']:.3f} | {_ci(r['ci'])} |"
        )
    lines += ["", "![accuracy against size on disk](compression.png)", ""]
    real = report.get("real_model")
    if real:
        lines += [
            "## Then compress a real model",
            "",
            f"{real['model']}, fine-tuned {real['finetune_budget']} (lr {real['learning_rate']:.0e}), compressed with "
            f"the shipped recipe `{real['recipe']}`"
            + (f" (recovery budget {real['recipe_budget']})" if real.get("recipe_budget") else "")
            + f"; its model card: `{real['card']}`. Latency: batch 8x128, every variant timed interleaved.",
            "",
            "| variant | accuracy (95% CI) | vs fp32 (paired) | size MB | smaller | latency ms | faster |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for r in real["frontier"]:
            lines.append(
                f"| {r['name']} | {r['accuracy']:.3f} ({_ci(r['ci'])}) | {100 * r['accuracy_change']:+.1f} ± "
                f"{100 * r['change_ci']:.1f} pt | {r['size_mb']:.1f} | {r['smaller']:.2f}x | {r['latency_ms']:.1f} | "
                f"{r['speedup']:.2f}x |"
            )
        timed_real = [r for r in real["frontier"] if "throughput_examples_per_s" in r]
        if timed_real:
            lines += [
                "",
                "On the real test texts (length-sorted batches of 8 padded per batch; batch 1 one review at a time), "
                "timed interleaved on the same CPU:",
                "",
                "| variant | examples/s | faster | batch-1 p50 ms | batch-1 p95 ms |",
                "|---|---:|---:|---:|---:|",
            ]
            lines += [
                f"| {r['name']} | {r['throughput_examples_per_s']:.0f} | {r['real_speedup']:.2f}x | "
                f"{r['batch1_latency_ms_p50']:.1f} | {r['batch1_latency_ms_p95']:.1f} |"
                for r in timed_real
            ]
        lines += ["", "![size, latency and accuracy of the real model's variants](real_frontier.png)", ""]
    lines += [
        "## Time",
        "",
        " · ".join(
            f"{k.removeprefix('at_').removesuffix('_s').replace('_', ' ')} at {v:.0f} s"
            for k, v in report["timings"].items()
        )
        + f" · done at {report['wall_clock_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)
