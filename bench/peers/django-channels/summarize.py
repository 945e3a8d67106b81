"""Adds up run.sh's runs: per run the load generator's figures and each side's CPU seconds,
per target the medians, and jetchat's ratio to the peer. Writes the JSON, prints a table.

  summarize.py RUNS_DIR OUT.json [--setting k=v]... [--version k=v]...
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys

PEER = "django"
# (scenario, figure shown, higher is better)
HEADLINE = {"pairs": "messages_per_s", "fanout": "deliveries_per_s",
            "fanout_fit": "deliveries_per_s"}
NAME = re.compile(r"^(pairs|fanout|fanout_fit)-(\d+)-(\w+)\.json$")


def parts(line):
    """'before a=1.0 b=2.0' -> {'a': 1.0, 'b': 2.0}"""
    return {k: float(v) for k, v in (p.split("=") for p in line.split()[1:])}


def cpu_spent(path):
    with open(path) as f:
        before, after = (parts(line) for line in f.read().splitlines()[:2])
    return {k: round(after[k] - before[k], 2) for k in after}


def load_average(path):
    """The machine's 1-minute load average after the run (run.sh's `load` line)."""
    with open(path) as f:
        for line in f:
            if line.startswith("load "):
                return float(line.split()[1])
    return None


def latency(report, name):
    summary = report.get("latency_ms", {}).get(name) or {}
    return {k: summary.get(k) for k in ("p50_ms", "p99_ms", "count")}


def one_run(runs, file):
    scenario, round_, target = NAME.match(file).groups()
    base = os.path.join(runs, file[: -len(".json")])
    with open(base + ".json") as f:
        report = json.load(f)
    figures = report.get("figures", {})
    integrity = report.get("integrity") or {}
    run = {
        "scenario": scenario,
        "round": int(round_),
        "target": target,
        "failed": bool(report.get("failed")) or not integrity.get("ok", False),
        "integrity": integrity,
        "cpu_s": cpu_spent(base + ".cpu"),
        "load_average_1m": load_average(base + ".cpu"),
    }
    with open(base + ".load-cpu") as f:
        run["load_generator_cpu_s"] = float(f.read())
    run["cpu_s"]["total"] = round(sum(run["cpu_s"].values()), 2)
    if scenario == "pairs":
        keep = ["messages_per_s", "round_trips", "sent", "accepted", "acked", "lost",
                "status_updates_read", "elapsed_s"]
        run["latency"] = {"send_to_new_message": latency(report, "send_to_new_message"),
                          "send_to_ack": latency(report, "send_to_ack")}
        work = figures.get("round_trips") or 0
    else:
        keep = ["messages_sent", "messages_per_s", "deliveries", "deliveries_expected",
                "deliveries_per_s", "messages_complete", "first_send_to_last_delivery_s",
                "accepted", "acked"]
        run["latency"] = {"send_to_last_member": latency(report, "send_to_last_member"),
                          "send_to_each_new_message": latency(report, "send_to_each_new_message"),
                          "send_to_ack": latency(report, "send_to_ack")}
        work = figures.get("deliveries") or 0
    run["figures"] = {k: figures.get(k) for k in keep}
    run["settled"] = figures.get("settled")
    # A run that moved no message at all failed, whatever its database check says.
    run["failed"] = run["failed"] or not work
    # CPU per unit of work: per message round trip (pairs), per delivery (fanout).
    run["service_cpu_us_per_unit"] = round(run["cpu_s"]["total"] * 1e6 / work, 1) if work else None
    return run


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def summarize(runs):
    by = {}
    for run in runs:
        by.setdefault((run["scenario"], run["target"]), []).append(run)
    medians = {}
    for (scenario, target), every in sorted(by.items()):
        key = HEADLINE[scenario]
        # A failed run (an error, a failed database check) has no figures worth a median.
        group = [r for r in every if not r["failed"]] or every
        first_latency = next(iter(group[0]["latency"]))
        medians.setdefault(scenario, {})[target] = {
            key: median([r["figures"][key] for r in group]),
            "range": [min(r["figures"][key] or 0 for r in group),
                      max(r["figures"][key] or 0 for r in group)],
            f"{first_latency}_p50_ms": median([r["latency"][first_latency]["p50_ms"] for r in group]),
            f"{first_latency}_p99_ms": median([r["latency"][first_latency]["p99_ms"] for r in group]),
            "service_cpu_s": median([r["cpu_s"]["total"] for r in group]),
            "service_cpu_us_per_unit": median([r["service_cpu_us_per_unit"] for r in group]),
            "load_average_1m": median([r["load_average_1m"] for r in group]),
            "runs": len(every),
            "failed_runs": len(every) - len([r for r in every if not r["failed"]]),
            **({"delivered_share": median([
                (r["figures"]["deliveries"] or 0) / r["figures"]["deliveries_expected"]
                for r in group if r["figures"].get("deliveries_expected")])}
               if scenario != "pairs" else {}),
            "all_checks_ok": not any(r["failed"] for r in every),
        }
    ratios = {}
    for scenario, targets in medians.items():
        peer = (targets.get(PEER) or {}).get(HEADLINE[scenario])
        for target, m in targets.items():
            if target != PEER and peer and m.get(HEADLINE[scenario]):
                ratios.setdefault(scenario, {})[f"{target}_over_{PEER}"] = round(
                    m[HEADLINE[scenario]] / peer, 1)
                peer_cpu = targets[PEER].get("service_cpu_us_per_unit")
                if peer_cpu and m.get("service_cpu_us_per_unit"):
                    ratios[scenario][f"{PEER}_cpu_per_unit_over_{target}"] = round(
                        peer_cpu / m["service_cpu_us_per_unit"], 1)
    return medians, ratios


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs")
    parser.add_argument("out")
    parser.add_argument("--setting", action="append", default=[])
    parser.add_argument("--version", action="append", default=[])
    args = parser.parse_args()
    runs = [one_run(args.runs, f) for f in sorted(os.listdir(args.runs)) if NAME.match(f)]
    order = list(HEADLINE)
    runs.sort(key=lambda r: (order.index(r["scenario"]), r["round"], r["target"]))
    medians, ratios = summarize(runs)
    mem_kib = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    result = {
        "date": sh("date", "-u", "+%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
                    "kernel": platform.release()},
        "settings": dict(s.split("=", 1) for s in args.setting),
        "versions": dict(v.split("=", 1) for v in args.version),
        "medians": medians,
        "ratios": ratios,
        "runs": runs,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    for scenario in [s for s in HEADLINE if s in medians]:
        targets = medians[scenario]
        key = HEADLINE[scenario]
        print(f"\n{scenario} ({key}, median of runs)")
        for target, m in targets.items():
            lat = [k for k in m if k.endswith("_p99_ms")][0]
            print(f"  {target:<15} {m[key]:>12,.0f}  p99 {m[lat]:>8.1f} ms  "
                  f"service CPU {m['service_cpu_s']:>6.1f} s ({m['service_cpu_us_per_unit']} µs per unit)"
                  f"  checks {'OK' if m['all_checks_ok'] else 'FAILED'}"
                  + (f"  delivered {100 * m['delivered_share']:.1f} %" if m.get("delivered_share") is not None else ""))
        for name, ratio in ratios.get(scenario, {}).items():
            print(f"  {name}: {ratio}×")
    print(f"peer: wrote {args.out}")
    return 1 if any(r["failed"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
