"""Ratios from the measured rows (each one side by side in the same run), a Markdown table and a PNG chart."""

from __future__ import annotations

from pathlib import Path

OURS, NAIVE, ANSIBLE, DIRECT = "toolkit+mirror", "naive", "ansible", "toolkit direct"
BASELINES = (NAIVE, ANSIBLE)


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def summarize(rows: list[dict]) -> dict:
    """P1 time(N)/time(1); P2 re-run changes, warm/cold and round trips per host; P3 WAN bytes per host; P4
    ours/each baseline; controller: ours' CPU per host, the share of the wall time the controller was on a core,
    peak RSS."""
    by = {(row["approach"], row["hosts"]): row for row in rows}
    counts = sorted({row["hosts"] for row in rows if row["approach"] == OURS})
    ratios: dict = {
        "P1_time_N_over_time_1": {},
        "P2_rerun": {},
        "P3_wan_bytes_per_host": {},
        **{f"P4_ours_over_{baseline}": {} for baseline in BASELINES},
        "controller": {},
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
            "round_trips_per_host": ours.get("round_trips_per_host_warm"),
        }
        if "cpu_s_cold" in ours:
            ratios["controller"][n] = {
                "cpu_s_per_host_warm": ours["cpu_s_per_host_warm"],
                "cpu_s_per_host_cold": ours["cpu_s_per_host_cold"],
                # how much of the run the controller kept a core busy (the rest: hosts, network, mirror sync)
                "cpu_share_cold": ratio(ours["cpu_s_cold"], ours["cold_s"]),
                "cpu_share_warm": ratio(ours["cpu_s_warm"], ours["warm_s"]),
                "peak_rss_mb": ours["tree_rss_mb"],
            }
            if ours.get("hosts_cpu_s_cold") is not None:
                # the hosts share the control machine's cores: how the cold run's CPU splits between them
                ratios["controller"][n]["hosts_cpu_s_cold"] = ours["hosts_cpu_s_cold"]
                ratios["controller"][n]["controller_share_of_cpu_cold"] = ratio(
                    ours["cpu_s_cold"], ours["cpu_s_cold"] + ours["hosts_cpu_s_cold"]
                )
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
    measured = [by[OURS, n] for n in counts if "cpu_s_cold" in by[OURS, n]]
    if len(measured) >= 2:
        hosts = [row["hosts"] for row in measured]
        ratios["controller_fit"] = {
            key: dict(zip(("fixed", "per_host"), line_fit(hosts, [row[key] for row in measured])))
            for key in ("cpu_s_cold", "cpu_s_warm", "tree_rss_mb")
        }
    return ratios


def line_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = fixed + per_host * x: what a run costs whatever its size, and each host on top."""
    n, mean_x, mean_y = len(xs), sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread if spread and n > 1 else 0.0
    return round(mean_y - slope * mean_x, 3), round(slope, 4)


def pair(row: dict, key: str, digits: int) -> str:
    """`cold / re-run` of a measurement, `-` where the row has none (results from before it was measured)."""
    values = [row.get(f"{key}_cold"), row.get(f"{key}_warm")]
    return " / ".join("-" if value is None else f"{value:.{digits}f}" for value in values)


def write_table(results: dict, path: Path) -> str:
    setup, machine = results["setup"], results["machine"]
    lines = [
        (
            f"WAN {setup['wan_rate']}, +{setup['wan_latency_ms']} ms per request; Ollama {setup['ollama_version']}, "
            f"Claude Code {setup['claude_code_version']}, model {setup['model']}; {machine['cpus']} CPUs, kernel "
            f"{machine['kernel']}, pyinfra {machine['pyinfra']}, commit {machine['commit']}, {machine['date']}"
        ),
        "",
        (
            "| approach | N | cold s | re-run s | round trips/host cold / re-run | controller CPU s/host cold / re-run "
            "| peak controller RSS MB | WAN MB cold | WAN MB/host | re-run WAN MB | re-run changes | end state |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        rss = row.get("tree_rss_mb")
        lines.append(
            f"| {row['approach']} | {row['hosts']} | {row['cold_s']:.1f} | {row['warm_s']:.1f} | "
            f"{pair(row, 'round_trips_per_host', 1)} | {pair(row, 'cpu_s_per_host', 3)} | "
            f"{'-' if rss is None else f'{rss:.0f}'} | "
            f"{row['wan_bytes_cold'] / 1e6:.1f} | {row['wan_bytes_cold'] / row['hosts'] / 1e6:.1f} | "
            f"{row['wan_bytes_warm'] / 1e6:.1f} | {'-' if row['rerun_changes'] is None else row['rerun_changes']} | "
            f"{'ok' if row['end_state_ok'] else 'FAILED'} |"
        )
    ratios = results["ratios"]
    counts = list(ratios["P2_rerun"])
    lines += [
        "",
        "| ratio | " + " | ".join(f"N={n}" for n in counts) + " |",
        "|---|" + "---|" * len(counts),
    ]

    def line(label: str, values: dict, key: str | None = None) -> None:
        cells = [values.get(n) for n in counts]
        cells = [cell if key is None or cell is None else cell.get(key) for cell in cells]
        if any(cell is not None for cell in cells):
            lines.append(f"| {label} | " + " | ".join("-" if c is None else str(c) for c in cells) + " |")

    for approach, values in ratios["P1_time_N_over_time_1"].items():
        line(f"P1 {approach} time(N)/time(1)", values)
    line("P2 re-run changes (goal 0)", ratios["P2_rerun"], "changes")
    line("P2 re-run / first run (goal <= 0.1)", ratios["P2_rerun"], "warm_over_cold")
    line("P2 re-run round trips per host (goal <= 8)", ratios["P2_rerun"], "round_trips_per_host")
    for baseline in BASELINES:
        for key, label in (
            ("time_cold", "cold time"),
            ("time_warm", "re-run time"),
            ("wan_bytes_cold", "WAN bytes"),
        ):
            line(f"P4 ours/{baseline} {label}", ratios[f"P4_ours_over_{baseline}"], key)
    controller = ratios.get("controller", {})
    line("controller CPU s/host re-run (goal <= 0.1)", controller, "cpu_s_per_host_warm")
    line("controller CPU s/host cold", controller, "cpu_s_per_host_cold")
    line("controller CPU / wall time, cold", controller, "cpu_share_cold")
    line("controller CPU / wall time, re-run", controller, "cpu_share_warm")
    line("peak controller RSS MB", controller, "peak_rss_mb")
    line("lab hosts' CPU s, cold (all hosts)", controller, "hosts_cpu_s_cold")
    line("controller / (controller + hosts) CPU, cold", controller, "controller_share_of_cpu_cold")
    fit = ratios.get("controller_fit")
    if fit:
        lines += [
            "",
            (
                "Controller cost fitted over N (least squares, fixed + per host × N): CPU "
                f"{fit['cpu_s_cold']['fixed']} s + {fit['cpu_s_cold']['per_host']} s/host cold, "
                f"{fit['cpu_s_warm']['fixed']} s + {fit['cpu_s_warm']['per_host']} s/host re-run; peak RSS "
                f"{fit['tree_rss_mb']['fixed']} MB + {fit['tree_rss_mb']['per_host']} MB/host."
            ),
        ]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


STYLES = ((OURS, "o-"), (NAIVE, "s--"), (ANSIBLE, "D--"), (DIRECT, "^:"))


def write_chart(results: dict, path: Path) -> None:
    """Time, WAN bytes per host, controller CPU per host, round trips per host and peak controller RSS against N;
    skipped (with a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"no chart: install the bench extra (pip install -e '.[bench]') for {path.name}")
        return
    figure, axes = plt.subplots(2, 3, figsize=(15, 8))
    times, wan, cpu, trips, rss, spare = axes.flat
    spare.axis("off")
    for approach, style in STYLES:
        rows = [row for row in results["rows"] if row["approach"] == approach]
        if not rows:
            continue
        hosts = [row["hosts"] for row in rows]
        times.plot(hosts, [row["cold_s"] for row in rows], style, label=f"{approach} (cold)")
        wan.plot(hosts, [row["wan_bytes_cold"] / row["hosts"] / 1e6 for row in rows], style, label=approach)
        if approach != DIRECT:
            times.plot(hosts, [row["warm_s"] for row in rows], style[0] + "-.", label=f"{approach} (re-run)")
        measured = [row for row in rows if "cpu_s_per_host_warm" in row]
        if not measured:
            continue
        hosts = [row["hosts"] for row in measured]
        for key, suffix in (("cold", style), ("warm", style[0] + "-.")):
            label = f"{approach} ({'cold' if key == 'cold' else 're-run'})"
            cpu.plot(hosts, [row[f"cpu_s_per_host_{key}"] for row in measured], suffix, label=label)
            trip_rows = [row for row in measured if row.get(f"round_trips_per_host_{key}") is not None]
            trips.plot(
                [row["hosts"] for row in trip_rows],
                [row[f"round_trips_per_host_{key}"] for row in trip_rows],
                suffix,
                label=label,
            )
        rss.plot(hosts, [row["tree_rss_mb"] for row in measured], style, label=approach)
    cpu.axhline(0.1, color="grey", linewidth=0.8, linestyle=":", label="goal 0.1 s/host (re-run)")
    trips.axhline(8, color="grey", linewidth=0.8, linestyle=":", label="goal 8/host (re-run)")
    times.set(xlabel="hosts N", ylabel="seconds", title="Onboarding time")
    wan.set(xlabel="hosts N", ylabel="MB over the WAN per host", title="WAN bytes per host")
    cpu.set(xlabel="hosts N", ylabel="CPU seconds per host", title="Controller CPU (user+sys) per host")
    trips.set(xlabel="hosts N", ylabel="commands + transfers per host", title="Round trips per host")
    rss.set(xlabel="hosts N", ylabel="MB", title="Peak controller RSS (process tree)")
    for axis in (times, wan, cpu, trips, rss):
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
        axis.set_ylim(bottom=0)
    figure.suptitle(f"WAN {results['setup']['wan_rate']}, +{results['setup']['wan_latency_ms']} ms/request")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
