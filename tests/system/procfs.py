"""Memory of a server process, from /proc (the tests run as root).

Not a test itself (scripts/test.sh runs only test_*.py)."""


def proc_status(pid):
    """VmHWM, VmRSS, VmPeak, VmSize of pid, in bytes."""
    values = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS", "VmPeak", "VmSize"):
                values[name] = int(rest.split()[0]) * 1024
    return values


def reset_peak(pid):
    """Resets VmHWM to the current VmRSS (Linux: "5" to clear_refs). False
    when not allowed; a caller then measures from the old peak."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
