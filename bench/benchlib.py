"""What the benchmarks share: reading a server's peak memory and printing
a table of times, so that each runner says only what it measures."""


def hwm(pid):
    """peak resident set in KB of the running process pid (VmHWM; wait4's
    ru_maxrss would also count the forking python before exec)"""
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1])
    return 0


def print_times(nmsgs, runs, commands, rows):
    """rows: [(label, {command: (wall ms, server CPU ms or None)})], one
    block of lines per command"""
    print("%d messages, median of %d runs: wall ms, server CPU ms"
          % (nmsgs, runs))
    for c in commands:
        print(c)
        for label, t in rows:
            wall, cpu = t[c]
            print("    %-20s %8.0f %8s" % (label, wall, "-" if cpu is None
                                           else "%.0f" % cpu))
