#!/usr/bin/env python3
"""Sets what Redis Sentinel logged beside a Faultline run, on one clock.

Usage: failover_timeline.py RUN_JSON SENTINEL_LOG

RUN_JSON is `faultline -o json runs show ID`; SENTINEL_LOG is a redis-sentinel
log. Both were written on the same machine, so the run's unix times and the
log's local times compare directly (scripts/demo runs everything on one host).
Times are printed relative to the first agent's apply of the fault.
"""
import datetime
import json
import re
import sys

# "1234:X 30 Nov 2026 22:01:02.345 # +switch-master mymaster 10.20.1.10 6379 ..."
LINE = re.compile(r"^\d+:X (\d+ \w+ \d+ [\d:.]+) . ([+-]\S+.*)$")
# The failover's steps, and the reasons Sentinel gives for abandoning one.
SHOWN = ("+sdown", "+odown", "+try-failover", "+elected-leader", "+selected-slave",
         "+promoted-slave", "+switch-master", "+failover-end", "-failover-abort")


def main():
    run = json.load(open(sys.argv[1]))
    events = run.get("timeline", [])

    def first(kind):
        return next((e for e in events if e.get("kind") == kind), None)

    applied = [int(e["unix_ns"]) for e in events if e.get("kind") == "injected"]
    if not applied:
        sys.exit("failover_timeline: the run has no injected event")
    t0 = min(applied) / 1e9
    rows = [(0.0, f"zone a cut off (first agent's apply; start skew "
                  f"{run.get('start_skew_ms', 0):.1f} ms across the agents)")]
    switch = None
    with open(sys.argv[2], errors="replace") as log:
        for line in log:
            m = LINE.match(line.strip())
            if not m or not m.group(2).startswith(SHOWN):
                continue
            when = datetime.datetime.strptime(m.group(1), "%d %b %Y %H:%M:%S.%f").timestamp()
            if when < t0:
                continue
            rows.append((when - t0, "sentinel  " + m.group(2)))
            if m.group(2).startswith("+switch-master") and switch is None:
                switch = when - t0
    outage, recovered = first("outage_start"), first("recovered")
    if outage:
        rows.append((int(outage["unix_ns"]) / 1e9 - t0,
                     f"client    first failed write (± {outage.get('error_ms', 0):.0f} ms)"))
    if recovered:
        rows.append((int(recovered["unix_ns"]) / 1e9 - t0,
                     f"client    writes succeed again (± {recovered.get('error_ms', 0):.0f} ms)"))
    for at, what in sorted(rows):
        print(f"  {at:+8.3f} s  {what}")
    print()
    if switch is None:
        print("  Sentinel logged no +switch-master after the cut: it did not fail over.")
        return
    print(f"  Sentinel's failover: +switch-master {1000 * switch:.0f} ms after the cut.")
    if recovered:
        back = int(recovered["unix_ns"]) / 1e9 - t0
        print(f"  The client's writes: back {1000 * back:.0f} ms after the cut, "
              f"{1000 * (back - switch):.0f} ms after Sentinel switched (a probe every "
              f"{run.get('probe_interval_ms', 0):.0f} ms finds the new primary at its next "
              f"write).")


if __name__ == "__main__":
    main()
