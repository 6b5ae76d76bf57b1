"""The one configuration object that drives the whole generator.

`AccelConfig` is frozen and validated at construction: every bad field raises a
`ValueError` that names the field and the value. Hardware (``hw``), host
software (``host``) and the testbenches (``sim``) all read the same object.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from .devices import DEVICES, Device
from .isa import PARAM_FIELD_BITS

__all__ = ["AccelConfig", "max_k_for"]

#: Bounds on the array shape.
MIN_DIM, MAX_DIM = 1, 64
#: Only TFLite int8 operands are supported.
SUPPORTED_INPUT_WIDTHS = (8,)
#: Accumulator width bounds, in bits (two's complement).
MIN_ACC_WIDTH, MAX_ACC_WIDTH = 16, 48
#: Command/result stream widths, in bytes.
SUPPORTED_BUS_BYTES = (4, 8, 16)
#: Parameter bits stored per output channel: bias 32 + multiplier 32 + shift.
PARAM_BITS_PER_CHANNEL = sum(PARAM_FIELD_BITS.values())
#: Requantiser multiplier styles: ``dsp`` (one 32x32 product per cycle on DSP blocks),
#: ``lut`` (a multi-cycle shift-add multiplier in logic, no DSP block). ``auto`` picks
#: ``lut`` where every DSP block is better spent on MACs (iCE40) and ``dsp`` elsewhere.
PP_MULS = ("auto", "dsp", "lut")


def max_k_for(acc_width: int, input_width: int = 8) -> int:
    """Largest K whose int8 dot product can never overflow ``acc_width`` bits.

    The largest product magnitude of two signed ``input_width``-bit numbers is
    ``(-2**(w-1))**2 = 2**(2w-2)`` (for int8: -128 * -128 = 16384), and it is
    positive, so the sum of K products fits when ``K * 2**(2w-2) <= 2**(acc-1) - 1``.
    The most negative sum, ``K * -128 * 127``, is smaller in magnitude.
    """
    return (2 ** (acc_width - 1) - 1) // (2 ** (2 * input_width - 2))


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"AccelConfig.{name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"AccelConfig.{name} must be in [{lo}, {hi}], got {value}")


@dataclass(frozen=True)
class AccelConfig:
    """Parameters of one generated accelerator.

    Parameters
    ----------
    rows : int
        Array rows, 1..64. Rows index the M dimension (rows of A and of C).
    cols : int
        Array columns, 1..64. Columns index the N dimension (columns of B and C).
    input_width : int
        Operand width in bits; 8 (signed int8, TFLite) is the only supported value.
    acc_width : int
        Accumulator width in bits, 16..48, two's complement.
    max_k : int
        Largest reduction length K one matrix may have. Must satisfy
        ``max_k <= max_k_for(acc_width)`` so that no accumulator can overflow;
        the hardware flags a longer matrix as an error instead of wrapping.
    bus_bytes : int
        Width of the command and result streams in bytes (4, 8 or 16). One A
        buffer entry (``rows`` bytes) or B entry (``cols`` bytes) is carried in
        ``ceil(entry / bus_bytes)`` words, so loading keeps pace with the array
        when ``bus_bytes >= max(rows, cols)``.
    a_depth, b_depth : int
        Entries in the A buffer (each one K-slice: ``rows`` int8) and in the B
        buffer (each ``cols`` int8); 16..65536.
    param_depth : int
        Channel groups in the parameter buffer (each ``cols`` channels of bias,
        multiplier and shift); 1..256.
    pp_lanes : int
        Requantiser lanes (values per cycle), a divisor of ``cols``; 0 (default)
        means ``cols``. With ``pp_mul="dsp"`` each lane needs one 32x32
        multiplier (`Device.dsps_per_requant_lane` DSP blocks); fewer lanes take
        ``cols / pp_lanes`` cycles per row.
    pp_mul : str
        Requantiser multiplier: ``dsp``, ``lut`` (multi-cycle, no DSP block) or
        ``auto`` (default: ``lut`` on iCE40, ``dsp`` elsewhere); resolved at
        construction.
    dsp_pes : int
        PEs whose multiplier maps onto a DSP block (`Device.macs_per_dsp` PEs share one
        block: two on an iCE40 SB_MAC16 in 8x8 mode); the others multiply in
        LUTs. -1 (default): as many as the target's DSP budget allows after
        the requantiser lanes (all PEs on ``generic``).
    target : str
        Device whose on-chip memory and DSP blocks must hold the design:
        ``generic`` (no limit), ``ice40-up5k``, ``ecp5-25f``, ``ecp5-45f``,
        ``ecp5-85f``.
    name : str
        Label used in reports and build-folder names.

    Raises
    ------
    ValueError
        For any field out of range, naming the field and value; in particular
        when ``acc_width`` is too narrow for ``max_k`` (both numbers are named).
    """

    rows: int = 8
    cols: int = 8
    input_width: int = 8
    acc_width: int = 32
    max_k: int = 4096
    bus_bytes: int = 8
    a_depth: int = 1024
    b_depth: int = 1024
    param_depth: int = 32
    pp_lanes: int = 0
    pp_mul: str = "auto"
    dsp_pes: int = -1
    target: str = "generic"
    name: str = "custom"

    def __post_init__(self) -> None:
        _check_int("rows", self.rows, MIN_DIM, MAX_DIM)
        _check_int("cols", self.cols, MIN_DIM, MAX_DIM)
        if type(self.input_width) is not int or self.input_width not in SUPPORTED_INPUT_WIDTHS:
            raise ValueError(
                f"AccelConfig.input_width must be one of {SUPPORTED_INPUT_WIDTHS} "
                f"(TFLite int8), got {self.input_width!r}"
            )
        _check_int("acc_width", self.acc_width, MIN_ACC_WIDTH, MAX_ACC_WIDTH)
        _check_int("max_k", self.max_k, 1, 2**24)
        limit = max_k_for(self.acc_width, self.input_width)
        if self.max_k > limit:
            raise ValueError(
                f"AccelConfig: acc_width={self.acc_width} bits is too narrow for "
                f"max_k={self.max_k}: it covers K <= {limit}; widen the accumulator "
                f"to {self.min_acc_width_for(self.max_k)} bits or lower max_k"
            )
        if type(self.bus_bytes) is not int or self.bus_bytes not in SUPPORTED_BUS_BYTES:
            raise ValueError(
                f"AccelConfig.bus_bytes must be one of {SUPPORTED_BUS_BYTES}, "
                f"got {self.bus_bytes!r}"
            )
        _check_int("a_depth", self.a_depth, 16, 65536)
        _check_int("b_depth", self.b_depth, 16, 65536)
        _check_int("param_depth", self.param_depth, 1, 256)
        if self.target not in DEVICES:
            raise ValueError(
                f"AccelConfig.target must be one of {sorted(DEVICES)}, got {self.target!r}"
            )
        if (
            isinstance(self.pp_lanes, bool)
            or not isinstance(self.pp_lanes, int)
            or not 0 <= self.pp_lanes <= self.cols
            or self.cols % (self.pp_lanes or self.cols)
        ):
            raise ValueError(
                f"AccelConfig.pp_lanes must be 0 (= cols) or a divisor of cols={self.cols}, "
                f"got {self.pp_lanes!r}"
            )
        lanes = self.pp_lanes or self.cols
        object.__setattr__(self, "pp_lanes", lanes)
        if self.pp_mul not in PP_MULS:
            raise ValueError(f"AccelConfig.pp_mul must be one of {PP_MULS}, got {self.pp_mul!r}")
        if self.pp_mul == "auto":
            object.__setattr__(self, "pp_mul", self.device.pp_mul_auto)
        _check_int("dsp_pes", self.dsp_pes, -1, self.rows * self.cols)
        dsps = self.device.dsps
        lane_dsps = self.requant_dsps
        if dsps is not None and lane_dsps > dsps:
            raise ValueError(
                f"AccelConfig: {lanes} requantiser lane(s) need {lane_dsps} DSP blocks but "
                f"target {self.target} has {dsps}; lower pp_lanes or use pp_mul='lut'"
            )
        per = self.device.macs_per_dsp
        if self.dsp_pes == -1:
            room = self.rows * self.cols if dsps is None else (dsps - lane_dsps) * per
            object.__setattr__(self, "dsp_pes", min(self.rows * self.cols, room))
        elif dsps is not None and -(-self.dsp_pes // per) + lane_dsps > dsps:
            raise ValueError(
                f"AccelConfig: dsp_pes={self.dsp_pes} ({-(-self.dsp_pes // per)} DSP blocks) "
                f"plus {lane_dsps} for the requantiser exceed the {dsps} DSP blocks of "
                f"target {self.target}"
            )
        budget = self.device.memory_bits
        if budget is not None and self.buffer_bits > budget:
            raise ValueError(
                f"AccelConfig: buffers need {self.buffer_bits} bits but target {self.target} "
                f"holds {budget}; lower a_depth/b_depth/param_depth"
            )
        if (
            not isinstance(self.name, str)
            or not self.name.replace("-", "").replace("_", "").isalnum()
        ):
            raise ValueError(
                f"AccelConfig.name must be a non-empty word of letters, digits, '-' "
                f"or '_', got {self.name!r}"
            )

    # -- derived figures -------------------------------------------------
    def min_acc_width_for(self, k: int) -> int:
        """Smallest accumulator width (bits) that holds any K-long int8 dot product."""
        width = MIN_ACC_WIDTH
        while max_k_for(width, self.input_width) < k:
            width += 1
        return width

    @property
    def k_width(self) -> int:
        """Bits of a counter that holds 0..max_k."""
        return self.max_k.bit_length()

    @property
    def buffer_bits(self) -> int:
        """On-chip memory bits of the A, B and parameter buffers."""
        w = self.input_width
        params = self.param_depth * self.cols * PARAM_BITS_PER_CHANNEL
        return self.a_depth * self.rows * w + self.b_depth * self.cols * w + params

    @property
    def device(self) -> Device:
        """The target's `hw.devices.Device` (budgets, DSP primitive, requantiser style)."""
        return DEVICES[self.target]

    @property
    def requant_dsps(self) -> int:
        """DSP blocks of the requantiser: 4 per lane with ``pp_mul="dsp"``, else none."""
        return self.pp_lanes * self.device.dsps_per_requant_lane if self.pp_mul == "dsp" else 0

    @property
    def macs_per_dsp(self) -> int:
        """int8 MACs per DSP block on this target (2 for SB_MAC16 in 8x8 mode)."""
        return self.device.macs_per_dsp

    @property
    def dsp_primitive(self) -> str | None:
        """DSP cell the PEs instantiate by hand (``SB_MAC16`` on iCE40), or None
        where synthesis infers the multiplier from a plain ``*``."""
        return self.device.dsp_primitive

    @property
    def dsps(self) -> int:
        """DSP blocks the design asks for: PEs on DSPs plus the requantiser's multipliers."""
        return -(-self.dsp_pes // self.macs_per_dsp) + self.requant_dsps

    @property
    def bus_bits(self) -> int:
        return 8 * self.bus_bytes

    @property
    def a_words_per_entry(self) -> int:
        """Command words that carry one A buffer entry (``rows`` bytes)."""
        return -(-self.rows // self.bus_bytes)

    @property
    def b_words_per_entry(self) -> int:
        """Command words that carry one B buffer entry (``cols`` bytes)."""
        return -(-self.cols // self.bus_bytes)

    @property
    def int8_words_per_row(self) -> int:
        """Result words per stored row of C in int8 mode (``cols`` bytes)."""
        return -(-self.cols // self.bus_bytes)

    @property
    def raw_words_per_row(self) -> int:
        """Result words per stored row of C in raw int32 mode (``4 * cols`` bytes)."""
        return -(-4 * self.cols // self.bus_bytes)

    @property
    def peak_macs_per_cycle(self) -> int:
        """MACs the array completes per clock when fully busy (rows x cols)."""
        return self.rows * self.cols

    def utilization(self, macs: int, cycles: int | None) -> float | None:
        """Fraction of peak: ``macs / (cycles * peak_macs_per_cycle)`` (useful MACs, padding
        excluded); None when the cycles are unknown, 0.0 for zero cycles."""
        if cycles is None:
            return None
        return macs / (cycles * self.peak_macs_per_cycle) if cycles else 0.0

    def replace(self, **changes: object) -> AccelConfig:
        """A copy with some fields changed (validated again).

        When the shape or target changes, ``pp_lanes``, ``pp_mul`` and ``dsp_pes`` go
        back to automatic unless given too, since the old choice may not fit the new shape.
        """
        if {"rows", "cols", "target"} & set(changes):
            changes.setdefault("pp_lanes", 0)
            changes.setdefault("dsp_pes", -1)
            changes.setdefault("pp_mul", "auto")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> AccelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"AccelConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> AccelConfig:
        return cls.from_dict(json.loads(text))

    @property
    def key(self) -> str:
        """Short stable identifier, e.g. ``8x8-a32-k4096``, for build folders."""
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:6]
        return f"{self.rows}x{self.cols}-a{self.acc_width}-k{self.max_k}-{digest}"
