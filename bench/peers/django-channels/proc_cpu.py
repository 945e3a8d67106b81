"""CPU seconds of process trees, from /proc, for run.sh.

  proc_cpu.py tree PID...        user+system seconds of each PID and all its descendants
                                 (live ones, plus the children they have reaped), summed
  proc_cpu.py run OUT -- CMD...  runs CMD, writes its CPU seconds (children's rusage) to OUT,
                                 exits with CMD's status
"""

import os
import resource
import subprocess
import sys

TICK = os.sysconf("SC_CLK_TCK")


def stat(pid):
    """(ppid, ticks): utime + stime + cutime + cstime of one process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After "pid (comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based
    # in proc(5), i.e. indexes 11..14 here.
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def processes():
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                table[int(entry)] = stat(entry)
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return table


def tree_seconds(roots):
    table = processes()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return sum(table[pid][1] for pid in seen) / TICK


def main(argv):
    if argv[:1] == ["tree"]:
        print(f"{tree_seconds([int(p) for p in argv[1:]]):.2f}")
        return 0
    if argv[:1] == ["run"] and len(argv) > 3 and argv[2] == "--":
        code = subprocess.call(argv[3:])
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(argv[1], "w") as f:
            f.write(f"{usage.ru_utime + usage.ru_stime:.2f}\n")
        return code
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
