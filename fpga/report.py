"""Parse nextpnr's JSON report (``--report``) and log into macforge's build figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["parse_nextpnr_report", "resource_shortage", "count_ice40_ffs", "CELL_KEYS"]

#: per family: report key -> nextpnr cell type
CELL_KEYS = {
    "ice40": {
        "luts": "ICESTORM_LC",
        "dsps": "ICESTORM_DSP",
        "brams": "ICESTORM_RAM",
        "sprams": "ICESTORM_SPRAM",
    },
    "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D", "brams": "DP16KD"},
}


def parse_nextpnr_report(path: Path, family: str) -> dict:
    """Figures from a nextpnr report: used/total per resource and the worst clock's Fmax."""
    data = json.loads(Path(path).read_text())
    util = data.get("utilization", {})
    out: dict = {}
    for key, cell in CELL_KEYS[family].items():
        entry = util.get(cell, {"used": 0, "available": 0})
        out[key] = int(entry["used"])
        out[f"{key}_total"] = int(entry["available"])
    # nextpnr-ice40 also lists the packer's constant net as a "clock"; it is not one
    clocks = {k: v for k, v in data.get("fmax", {}).items() if "PACKER" not in k}
    if clocks:
        worst = min(clocks.values(), key=lambda c: c["achieved"])
        out["fmax_mhz"] = round(float(worst["achieved"]), 2)
        out["clocks"] = {
            name: {
                "achieved_mhz": round(float(c["achieved"]), 2),
                "target_mhz": round(float(c["constraint"]), 2),
            }
            for name, c in clocks.items()
        }
    return out


_SHORTAGE = re.compile(r"[Dd]esign uses (\d+) cells of type '?(\w+)'?, but device only has (\d+)")
_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)
_NO_BELS = re.compile(r"no BELs remaining to implement cell type '(\w+)'")


def resource_shortage(log_text: str) -> str | None:
    """One line naming the resource when placement failed for lack of it, else None.

    Reads nextpnr's "Device utilisation" table (used/available per cell type) and
    its placement errors.
    """
    over = [
        (cell, int(used), int(avail))
        for cell, used, avail in _UTIL.findall(log_text)
        if int(used) > int(avail)
    ]
    if over:
        return "design needs " + ", ".join(
            f"{used} {cell} cells but the device has only {avail}" for cell, used, avail in over
        )
    m = _SHORTAGE.search(log_text)
    if m:
        used, cell, avail = m.groups()
        return f"design needs {used} {cell} cells but the device has only {avail}"
    m = _NO_BELS.search(log_text)
    if m:
        return f"design needs more {m.group(1)} cells than the device has"
    return None


_DFF = re.compile(r"^\s*(\d+)\s+(SB_DFF\w*)\s*$", re.MULTILINE)


def count_ice40_ffs(yosys_log: str) -> int | None:
    """Flip-flops of the whole design in a synth_ice40 log (iCE40 LCs hide them).

    Reads the cell counts after the last "design hierarchy" heading (the totals
    including submodules); each SB_DFF* type is counted once.
    """
    marker = yosys_log.rfind("design hierarchy")
    if marker < 0:
        return None
    seen: dict[str, int] = {}
    for count, cell in _DFF.findall(yosys_log[marker:]):
        seen.setdefault(cell, int(count))
    return sum(seen.values()) if seen else None
