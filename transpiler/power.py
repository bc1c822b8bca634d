"""The energy supply of a batteryless device, and the cycle budget of one power cycle.

A capacitor C charged to the turn-on voltage V_on powers the MCU until it falls to the brown-out
voltage V_off. The usable energy per power cycle is E = C (V_on^2 - V_off^2) / 2; at an active
power P and clock f that is f * E / P cycles. With a harvesting power H the capacitor recharges in
E / H seconds (the device is off meanwhile).

Spec text (CLI ``--power``): comma-separated ``key=value`` with units, e.g.
``cap=100uF,von=3.3V,voff=1.8V,active=1.5mW[,freq=8MHz][,harvest=0.5mW]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transpiler.errors import FreemlError

_PREFIX = {"": 1.0, "p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([pnuµmkMG]?)([A-Za-z]*)\s*$")
_FIELDS = {"cap": "F", "von": "V", "voff": "V", "active": "W", "freq": "Hz", "harvest": "W"}
DEFAULT_FREQ_HZ = 8e6


@dataclass(frozen=True)
class PowerSupply:
    """An energy supply: capacitor, voltage window, active power, clock and optional harvest power."""

    cap_f: float
    von_v: float
    voff_v: float
    active_w: float
    freq_hz: float = DEFAULT_FREQ_HZ
    harvest_w: float | None = None

    @property
    def energy_j(self) -> float:
        return 0.5 * self.cap_f * (self.von_v ** 2 - self.voff_v ** 2)

    @property
    def cycles_per_power_cycle(self) -> int:
        # rounded to 1e-6 first: 8 MHz * 382.5 uJ / 1.5 mW is 2039999.9999999998 in binary floating point
        return int(round(self.freq_hz * self.energy_j / self.active_w, 6))

    @property
    def recharge_s(self) -> float | None:
        return None if not self.harvest_w else self.energy_j / self.harvest_w


def _quantity(key: str, text: str, unit: str) -> float:
    m = _QUANTITY.match(text)
    if not m or (m.group(3) and m.group(3) != unit):
        raise FreemlError(f"--power: cannot read {key}={text!r}",
                          hint=f"write a number with an optional SI prefix and the unit {unit}, e.g. "
                               f"{key}=100u{unit}" if unit == "F" else f"e.g. {key}=1.5m{unit}")
    return float(m.group(1)) * _PREFIX[m.group(2)]


def parse_power(spec: str) -> PowerSupply:
    """Parse a ``--power`` spec; every mistake is a FreemlError naming the field."""
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, text = part.partition("=")
        key = key.strip()
        if not sep or key not in _FIELDS:
            raise FreemlError(f"--power: unknown field {part!r}",
                              hint=f"fields: {', '.join(_FIELDS)} (cap, von, voff, active are required)")
        values[key] = _quantity(key, text, _FIELDS[key])
    missing = [k for k in ("cap", "von", "voff", "active") if k not in values]
    if missing:
        raise FreemlError(f"--power: missing {', '.join(missing)}",
                          hint="e.g. --power cap=100uF,von=3.3V,voff=1.8V,active=1.5mW")
    if values["von"] <= values["voff"]:
        raise FreemlError(f"--power: von ({values['von']} V) must be above voff ({values['voff']} V)")
    if min(values.values()) <= 0:
        raise FreemlError("--power: every value must be positive")
    return PowerSupply(values["cap"], values["von"], values["voff"], values["active"],
                       values.get("freq", DEFAULT_FREQ_HZ), values.get("harvest"))
