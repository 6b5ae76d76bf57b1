"""Output-stationary systolic MAC array with input skewing and a row drain."""

from __future__ import annotations

from amaranth.hdl import Cat, EnableInserter, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import AccelConfig
from .dsp import SBMac16Dual8x8
from .pe import ProcessingElement

__all__ = ["SystolicArray", "slice_layout", "result_layout"]


def slice_layout(config: AccelConfig) -> data.StructLayout:
    """One K-slice of C = A @ B: column k of A and row k of B.

    Fields (LSB first): ``a`` (rows x signed int8, ``a[i] = A[i, k]``),
    ``b`` (cols x signed int8, ``b[j] = B[k, j]``), ``first`` (1: clear the
    accumulators before this slice; 0: keep accumulating), ``last`` (1: this is
    the final slice; drain the results afterwards).
    """
    w = config.input_width
    return data.StructLayout(
        {
            "a": data.ArrayLayout(signed(w), config.rows),
            "b": data.ArrayLayout(signed(w), config.cols),
            "first": 1,
            "last": 1,
        }
    )


def result_layout(config: AccelConfig) -> data.StructLayout:
    """One drained row of C: ``row[j] = C[i, j]`` (signed acc_width), ``last`` on row rows-1."""
    return data.StructLayout(
        {"row": data.ArrayLayout(signed(config.acc_width), config.cols), "last": 1}
    )


class SystolicArray(wiring.Component):
    """``rows x cols`` output-stationary array computing C = A @ B in int8 -> int32.

    The array takes one K-slice per accepted transfer on ``slices`` (see
    `slice_layout`) and skews it by rows: row ``i`` of A is delayed ``i`` edges
    and broadcast to every PE of row ``i``; B enters row 0 unskewed and travels
    down each column one PE per edge (semi-systolic). So A[i, k] and B[k, j]
    meet in PE(i, j) ``1 + i`` edges after slice k is accepted, the same edge for
    the whole row; the PE pipeline (product register, accumulator:
    `ProcessingElement.LATENCY` edges) follows.

    Drain: the PEs have no result registers. The PEs of row ``i`` finish
    together, one cycle after row ``i - 1``, and may start the next matrix on the
    following edge, so each column picks the accumulator of the row that is
    ``done`` in that cycle (rows are one-hot: the ``min_k`` rule keeps matrices
    apart). No horizontal forwarding, column skew or drain alignment registers.

    Multipliers: the first ``config.dsp_pes`` PEs (row-major) multiply on DSP
    blocks, the rest in LUTs (`hw.arith.lut_mul`). Where
    ``config.dsp_primitive == "SB_MAC16"`` (iCE40), consecutive DSP PEs share one
    hand-instantiated `hw.dsp.SBMac16Dual8x8` (two signed 8x8 products per block,
    ``ceil(dsp_pes / 2)`` blocks; an odd ``dsp_pes`` leaves one half used), whose
    product registers are the PEs' stage 1 and whose clock enable is the stall
    enable. Elsewhere a DSP PE is a registered ``*`` that synthesis maps.

    After a slice with ``last`` set, ``results`` delivers the ``rows`` rows of C
    (row 0 first) on consecutive cycles unless back-pressured; the final row has
    ``last`` set. The first row is valid `latency` cycles after the cycle in
    which the last slice was accepted.

    Throughput: slices are accepted every cycle (no bubbles between matrices)
    as long as consecutive matrices are at least ``min_k = max(rows, cols)``
    slices long; a ``last`` slice arriving sooner is held (``ready`` low) until
    the drain of the previous matrix can no longer collide with it.

    Back-pressure: while ``results.valid & ~results.ready`` the whole array is
    frozen (a global clock enable); ``slices.ready`` is low during the freeze.
    ``slices.ready`` depends combinationally on ``results.ready`` and on
    ``slices.payload.last``.

    Errors: ``overflow`` is a sticky flag (cleared by reset or by
    ``overflow_clear`` while not frozen) set when a matrix
    runs longer than ``config.max_k`` slices, the longest the accumulator width
    is proven to hold; the results of such a matrix must not be trusted.

    Parameters
    ----------
    config : AccelConfig

    Attributes
    ----------
    slices : In(stream.Signature(slice_layout(config)))
    results : Out(stream.Signature(result_layout(config)))
    overflow : Out(1)
    overflow_clear : In(1)
    """

    def __init__(self, config: AccelConfig) -> None:
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, got {config!r}")
        self.config = config
        super().__init__(
            {
                "slices": In(stream.Signature(slice_layout(config))),
                "results": Out(stream.Signature(result_layout(config))),
                "overflow": Out(1),
                "overflow_clear": In(1),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from accepting the last slice to the first result row being valid."""
        return 1 + ProcessingElement.LATENCY

    @property
    def min_k(self) -> int:
        """Shortest matrix (in slices) that streams back-to-back without bubbles."""
        return max(self.config.rows, self.config.cols)

    def elaborate(self, platform):
        cfg = self.config
        rows, cols = cfg.rows, cfg.cols
        m = Module()
        core = Module()  # everything below advances only while `enable`

        enable = Signal()
        m.d.comb += enable.eq(~(self.results.valid & ~self.results.ready))

        # -- input handshake, gap rule for `last`, overflow check ------------
        cooldown = Signal(range(self.min_k), name="cooldown")
        last_blocked = self.slices.payload.last & (cooldown != 0)
        m.d.comb += self.slices.ready.eq(enable & ~last_blocked)
        accept = Signal()
        m.d.comb += accept.eq(self.slices.valid & self.slices.ready)
        with core.If(accept & self.slices.payload.last):
            core.d.sync += cooldown.eq(self.min_k - 1)
        with core.Elif(cooldown != 0):
            core.d.sync += cooldown.eq(cooldown - 1)

        k_count = Signal(range(cfg.max_k + 1), name="k_count")
        with core.If(self.overflow_clear):
            core.d.sync += self.overflow.eq(0)
        with core.If(accept):
            with core.If(self.slices.payload.first):
                core.d.sync += k_count.eq(1)
            with core.Elif(k_count == cfg.max_k):
                core.d.sync += self.overflow.eq(1)
            with core.Else():
                core.d.sync += k_count.eq(k_count + 1)

        # -- input register stage ----------------------------------------------
        in_valid = Signal()
        in_slice = Signal(slice_layout(cfg))
        core.d.sync += in_valid.eq(accept)
        with core.If(accept):
            core.d.sync += in_slice.eq(self.slices.payload)

        # -- row skew: row i delayed i edges; A is broadcast along a row, B travels
        # down its column one PE per edge, so all PEs of row i meet slice k at the
        # same edge and a whole row of C completes at once (no drain alignment)
        def delay(sig, n, name):
            for stage in range(n):
                nxt = Signal.like(sig, name=f"{name}_d{stage + 1}")
                core.d.sync += nxt.eq(sig)
                sig = nxt
            return sig

        row_a, row_valid, row_first, row_last = [], [], [], []
        for i in range(rows):
            row_a.append(delay(in_slice.a[i], i, f"a{i}"))
            row_valid.append(delay(in_valid, i, f"v{i}"))
            row_first.append(delay(in_slice.first, i, f"f{i}"))
            row_last.append(delay(in_slice.last, i, f"l{i}"))
        col_b = [in_slice.b[j] for j in range(cols)]

        # -- the PE grid -----------------------------------------------------------
        # the first `dsp_pes` PEs (row-major) multiply on DSP blocks, the rest in LUTs
        packed = cfg.dsp_primitive == "SB_MAC16"

        def multiplier(index: int) -> str:
            if index >= cfg.dsp_pes:
                return "lut"
            return "external" if packed else "dsp"

        pes = [
            [
                ProcessingElement(
                    input_width=cfg.input_width,
                    acc_width=cfg.acc_width,
                    multiplier=multiplier(i * cols + j),
                )
                for j in range(cols)
            ]
            for i in range(rows)
        ]
        if packed:
            # PE 2n on the bottom half of block n, PE 2n+1 on its top half
            flat = [pe for row in pes for pe in row][: cfg.dsp_pes]
            for n in range(0, len(flat), 2):
                mac = SBMac16Dual8x8()
                m.submodules[f"mac16_{n // 2}"] = mac
                m.d.comb += mac.ce.eq(enable)
                for pe, a, b, p in [(flat[n], mac.a0, mac.b0, mac.p0)] + (
                    [(flat[n + 1], mac.a1, mac.b1, mac.p1)] if n + 1 < len(flat) else []
                ):
                    m.d.comb += [a.eq(pe.a_in), b.eq(pe.b_in), pe.product.eq(p)]
        for i in range(rows):
            for j in range(cols):
                pe = pes[i][j]
                core.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.a_in.eq(row_a[i]),
                    pe.valid_in.eq(row_valid[i]),
                    pe.first_in.eq(row_first[i]),
                    pe.last_in.eq(row_last[i]),
                    pe.b_in.eq(col_b[j] if i == 0 else pes[i - 1][j].b_out),
                ]

        # -- drain: the PEs of row i are done together; each column picks the
        # accumulator of the row that is done in this cycle (one row per cycle)
        row_done = [pes[i][0].done for i in range(rows)]
        m.d.comb += self.results.valid.eq(Cat(*row_done).any())
        for j in range(cols):
            picked = 0
            for i in range(rows):
                picked = picked | Mux(row_done[i], pes[i][j].acc, 0)
            m.d.comb += self.results.payload.row[j].eq(picked)
        m.d.comb += self.results.payload.last.eq(row_done[rows - 1])

        m.submodules.core = EnableInserter(enable)(core)
        return m
