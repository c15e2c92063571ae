"""Fault injection rules and request statistics for the control endpoint.

Rules are kept in the order they were added; each S3 request takes the
first rule that matches it and still has a count left.
"""

import collections
import threading

ERROR_CODES = {500: ("InternalError",
                     "We encountered an internal error. Please try again."),
               503: ("SlowDown", "Please reduce your request rate.")}
MODES = ("error", "delay", "drop", "down", "fail_part", "reset")


class FaultError(ValueError):
    """A fault description the control endpoint cannot accept."""


def _count(spec):
    count = spec.get("count", 1)
    if not isinstance(count, int) or count == 0 or count < -1:
        raise FaultError("count must be a positive integer or -1 (forever)")
    return count


def _seconds(spec, default=None):
    seconds = spec.get("seconds", default)
    if not isinstance(seconds, (int, float)) or seconds < 0:
        raise FaultError("seconds must be a non-negative number")
    return float(seconds)


def _status(spec, default):
    status = spec.get("status", default)
    if status not in ERROR_CODES:
        raise FaultError("status must be 500 or 503")
    return status


def parse_rule(spec):
    """Validate one JSON fault description and return it normalised."""
    if not isinstance(spec, dict) or spec.get("mode") not in MODES:
        raise FaultError(f"mode must be one of {', '.join(MODES)}")
    mode = spec["mode"]
    rule = {"mode": mode}
    if mode in ("error", "delay", "drop"):
        rule["count"] = _count(spec)
        rule["method"] = spec.get("method")
        rule["operation"] = spec.get("operation")
    if mode == "error":
        rule["status"] = _status(spec, 503)
    elif mode == "delay":
        rule["seconds"] = _seconds(spec)
    elif mode == "drop":
        rule["reset"] = bool(spec.get("reset", False))
    elif mode == "down":
        rule["seconds"] = _seconds(spec, 5.0)
    elif mode == "fail_part":
        part = spec.get("part", 1)
        if not isinstance(part, int) or part < 1:
            raise FaultError("part must be a positive integer")
        rule["part"] = part
        rule["status"] = _status(spec, 500)
    return rule


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self._pending_part_fault = None  # waits for the next upload
        self._part_faults = {}  # upload id -> {"part", "status", "seen"}

    def add(self, rule):
        with self._lock:
            if rule["mode"] == "fail_part":
                self._pending_part_fault = dict(rule)
            else:
                self._rules.append(dict(rule))

    def reset(self):
        with self._lock:
            self._rules.clear()
            self._pending_part_fault = None
            self._part_faults.clear()

    def describe(self):
        with self._lock:
            return {"rules": [dict(r) for r in self._rules],
                    "pending_fail_part": self._pending_part_fault,
                    "armed_uploads": dict(self._part_faults)}

    def take(self, method, operation):
        """The rule to apply to this request, if any (uses up one count)."""
        with self._lock:
            for rule in self._rules:
                if rule["method"] and rule["method"].upper() != method:
                    continue
                if rule["operation"] and rule["operation"] != operation:
                    continue
                if rule["count"] > 0:
                    rule["count"] -= 1
                    if rule["count"] == 0:
                        self._rules.remove(rule)
                return dict(rule)
            return None

    def upload_created(self, upload_id):
        """Attach a pending fail_part rule to a new multipart upload."""
        with self._lock:
            if self._pending_part_fault is not None:
                rule = self._pending_part_fault
                self._part_faults[upload_id] = {
                    "part": rule["part"], "status": rule["status"], "seen": 0}
                self._pending_part_fault = None

    def part_status(self, upload_id):
        """Status to fail this UploadPart with, or None."""
        with self._lock:
            armed = self._part_faults.get(upload_id)
            if armed is None:
                return None
            armed["seen"] += 1
            if armed["seen"] == armed["part"]:
                del self._part_faults[upload_id]
                return armed["status"]
            return None


class Stats:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self.connections = 0
            self.requests = 0
            self.operations = collections.Counter()
            self.statuses = collections.Counter()
            self.faults = collections.Counter()

    def connection(self):
        with self._lock:
            self.connections += 1

    def request(self, operation):
        with self._lock:
            self.requests += 1
            self.operations[operation] += 1

    def status(self, status):
        with self._lock:
            self.statuses[str(status)] += 1

    def fault(self, mode):
        with self._lock:
            self.faults[mode] += 1

    def snapshot(self):
        with self._lock:
            return {"connections_accepted": self.connections,
                    "requests": self.requests,
                    "operations": dict(self.operations),
                    "statuses": dict(self.statuses),
                    "faults_injected": dict(self.faults)}
