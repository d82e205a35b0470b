"""Ratios from the measured rows (each one side by side in the same run), a Markdown table and a PNG chart."""

from __future__ import annotations

from pathlib import Path

OURS, NAIVE, ANSIBLE, DIRECT = "toolkit+mirror", "naive", "ansible", "toolkit direct"
BASELINES = (NAIVE, ANSIBLE)


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def summarize(rows: list[dict]) -> dict:
    """P1 time(N)/time(1); P2 re-run changes and warm/cold; P3 WAN bytes per host; P4 ours/each baseline."""
    by = {(row["approach"], row["hosts"]): row for row in rows}
    counts = sorted({row["hosts"] for row in rows if row["approach"] == OURS})
    ratios: dict = {
        "P1_time_N_over_time_1": {},
        "P2_rerun": {},
        "P3_wan_bytes_per_host": {},
        **{f"P4_ours_over_{baseline}": {} for baseline in BASELINES},
    }
    for approach in (OURS, *BASELINES):
        if (approach, 1) in by:
            ratios["P1_time_N_over_time_1"][approach] = {
                n: ratio(by[approach, n]["cold_s"], by[approach, 1]["cold_s"])
                for n in counts
                if (approach, n) in by
            }
    for n in counts:
        ours = by[OURS, n]
        ratios["P2_rerun"][n] = {
            "changes": ours["rerun_changes"],
            "warm_over_cold": ratio(ours["warm_s"], ours["cold_s"]),
        }
        for baseline in BASELINES:
            if (baseline, n) in by:
                theirs = by[baseline, n]
                ratios[f"P4_ours_over_{baseline}"][n] = {
                    "time_cold": ratio(ours["cold_s"], theirs["cold_s"]),
                    "time_warm": ratio(ours["warm_s"], theirs["warm_s"]),
                    "wan_bytes_cold": ratio(ours["wan_bytes_cold"], theirs["wan_bytes_cold"]),
                }
    for (approach, n), row in sorted(by.items()):
        ratios["P3_wan_bytes_per_host"].setdefault(approach, {})[n] = row["wan_bytes_cold"] // n
    return ratios


def write_table(results: dict, path: Path) -> str:
    setup, machine = results["setup"], results["machine"]
    lines = [
        (
            f"WAN {setup['wan_rate']}, +{setup['wan_latency_ms']} ms per request; Ollama {setup['ollama_version']}, "
            f"Claude Code {setup['claude_code_version']}, model {setup['model']}; {machine['cpus']} CPUs, kernel "
            f"{machine['kernel']}, pyinfra {machine['pyinfra']}, commit {machine['commit']}, {machine['date']}"
        ),
        "",
        "| approach | N | cold s | re-run s | WAN MB cold | WAN MB/host | re-run WAN MB | re-run changes | end state |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['approach']} | {row['hosts']} | {row['cold_s']:.1f} | {row['warm_s']:.1f} | "
            f"{row['wan_bytes_cold'] / 1e6:.1f} | {row['wan_bytes_cold'] / row['hosts'] / 1e6:.1f} | "
            f"{row['wan_bytes_warm'] / 1e6:.1f} | {'-' if row['rerun_changes'] is None else row['rerun_changes']} | "
            f"{'ok' if row['end_state_ok'] else 'FAILED'} |"
        )
    ratios = results["ratios"]
    lines += [
        "",
        "| ratio | " + " | ".join(f"N={n}" for n in ratios["P2_rerun"]) + " |",
        "|---|" + "---|" * len(ratios["P2_rerun"]),
    ]
    for approach, values in ratios["P1_time_N_over_time_1"].items():
        lines.append(
            f"| P1 {approach} time(N)/time(1) | " + " | ".join(f"{v}" for v in values.values()) + " |"
        )
    lines.append(
        "| P2 re-run changes (goal 0) | "
        + " | ".join(str(v["changes"]) for v in ratios["P2_rerun"].values())
        + " |"
    )
    lines.append(
        "| P2 re-run / first run | "
        + " | ".join(str(v["warm_over_cold"]) for v in ratios["P2_rerun"].values())
        + " |"
    )
    for baseline in BASELINES:
        for key, label in (
            ("time_cold", "cold time"),
            ("time_warm", "re-run time"),
            ("wan_bytes_cold", "WAN bytes"),
        ):
            values = [str(v[key]) for v in ratios[f"P4_ours_over_{baseline}"].values()]
            if values:
                lines.append(f"| P4 ours/{baseline} {label} | " + " | ".join(values) + " |")
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def write_chart(results: dict, path: Path) -> None:
    """Onboarding time and WAN bytes per host against N; skipped (with a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"no chart: install the bench extra (pip install -e '.[bench]') for {path.name}")
        return
    figure, (times, wan) = plt.subplots(1, 2, figsize=(10, 4))
    for approach, style in ((OURS, "o-"), (NAIVE, "s--"), (ANSIBLE, "D--"), (DIRECT, "^:")):
        rows = [row for row in results["rows"] if row["approach"] == approach]
        if not rows:
            continue
        hosts = [row["hosts"] for row in rows]
        times.plot(hosts, [row["cold_s"] for row in rows], style, label=f"{approach} (cold)")
        wan.plot(hosts, [row["wan_bytes_cold"] / row["hosts"] / 1e6 for row in rows], style, label=approach)
        if approach != DIRECT:
            times.plot(hosts, [row["warm_s"] for row in rows], style[0] + "-.", label=f"{approach} (re-run)")
    times.set(xlabel="hosts N", ylabel="seconds", title="Onboarding time")
    wan.set(xlabel="hosts N", ylabel="MB over the WAN per host", title="WAN bytes per host")
    for axis in (times, wan):
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
        axis.set_ylim(bottom=0)
    figure.suptitle(f"WAN {results['setup']['wan_rate']}, +{results['setup']['wan_latency_ms']} ms/request")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
