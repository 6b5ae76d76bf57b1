"""The whole accelerator in RTL simulation: tiled GEMMs, requantisation, errors, fuzzing.

Every GEMM is checked bit for bit against `sim.golden`. Command words are fed
with random idle cycles and results pulled with random back-pressure. Seeds
come from `sim.runner.test_seed` (``MACFORGE_SEED`` replays one).
"""

from __future__ import annotations

import numpy as np
import pytest

from macforge.host.compiler import Requant, compile_gemm
from macforge.host.program import cmd_load_params, cmd_status, decode_status
from macforge.host.runtime import Segment, check_same_hardware, run_many
from macforge.hw import isa
from macforge.hw.config import AccelConfig
from macforge.hw.presets import preset
from macforge.sim import golden, runner
from macforge.sim.isa_model import IsaModel
from macforge.sim.soak import check_case, fuzz_case
from macforge.sim.stimulus import gemm_case
from macforge.sim.transport import SimTransport

ACCEL_CONFIGS = {
    "tiny": preset("tiny"),
    # small buffers: forces double-buffered panels, K chunks and parameter reloads;
    # one requantiser lane (4 transfers per row)
    "4x4-small": AccelConfig(
        rows=4,
        cols=4,
        acc_width=24,
        max_k=511,
        bus_bytes=4,
        a_depth=32,
        b_depth=32,
        param_depth=3,
        pp_lanes=1,
        name="t4x4s",
    ),
    "default": preset("default"),
    # the requantiser multiplies in logic (pp_mul="lut": one transfer every 4 cycles),
    # 2 lanes: 2 transfers per row, rows queue in the store unit's FIFO
    "4x4-lut": AccelConfig(
        rows=4,
        cols=4,
        acc_width=24,
        max_k=511,
        bus_bytes=4,
        a_depth=64,
        b_depth=64,
        param_depth=3,
        pp_lanes=2,
        pp_mul="lut",
        name="t4x4l",
    ),
    # B entries and result rows span two 32-bit words; 2 requantiser lanes;
    # 5 PEs multiply on DSP blocks, 11 in LUTs
    "2x8": AccelConfig(
        rows=2,
        cols=8,
        acc_width=32,
        max_k=1000,
        bus_bytes=4,
        a_depth=256,
        b_depth=256,
        param_depth=8,
        pp_lanes=2,
        dsp_pes=5,
        name="t2x8",
    ),
    # 16-byte words: a parameter record (bias, multiplier, shift) is one word
    "2x2-wide": AccelConfig(
        rows=2,
        cols=2,
        acc_width=24,
        max_k=255,
        bus_bytes=16,
        a_depth=64,
        b_depth=64,
        param_depth=4,
        name="t2x2w",
    ),
}


def shapes_for(cfg: AccelConfig, rng) -> list[tuple[int, int, int]]:
    r, c = cfg.rows, cfg.cols
    kmax = min(cfg.max_k, 100)
    fixed = [
        (1, 1, 1),
        (r + 1, 1, c + 1),
        (max(r - 1, 1), 2, 1),
        (2 * r + 3, min(37, kmax), 3 * c - 1),
        (1, kmax, 1),
    ]
    scale = 48 if r * c >= 16 else 20
    rand = [
        (int(rng.integers(1, scale)), int(rng.integers(1, kmax + 1)), int(rng.integers(1, scale)))
        for _ in range(6)
    ]
    return fixed + rand


@pytest.mark.parametrize("cfg_name", list(ACCEL_CONFIGS))
def test_random_gemms_bit_exact(cfg_name):
    cfg = ACCEL_CONFIGS[cfg_name]
    seed = runner.test_seed(f"gemm:{cfg_name}")
    rng = np.random.default_rng(seed)
    programs, wants, labels = [], [], []
    for idx, (m, k, n) in enumerate(shapes_for(cfg, rng)):
        prog, want = gemm_case(cfg, rng, m, k, n, requant=idx % 3 != 2)
        programs.append(prog)
        wants.append(want)
        labels.append(f"{m}x{k}x{n}")
    results = run_many(programs, SimTransport(cfg, idle_prob=0.2, stall_prob=0.2, seed=seed))
    for label, res, want in zip(labels, results, wants, strict=True):
        assert res.output.dtype == want.dtype
        assert np.array_equal(res.output, want), f"seed {seed}: GEMM {label} differs from golden"
        assert res.status["error"] == 0


@pytest.mark.parametrize("preset_name", ["ulx3s", "ulx3s-45f", "ulx3s-25f"])
def test_board_presets_bit_exact(preset_name):
    """The ECP5 board presets as built (DSP requantiser with registered partial products;
    on the 85F's 16x16, 148 DSP PEs and 108 LUT PEs): requantised GEMMs past the
    requantiser's keep-up K, a raw one and a 1x1x1, with random idle and back-pressure."""
    cfg = preset(preset_name)
    seed = runner.test_seed(f"board-preset:{preset_name}")
    rng = np.random.default_rng(seed)
    shapes = [
        (cfg.rows + 3, 150, cfg.cols + 5, True),
        (2 * cfg.rows - 1, 33, cfg.cols - 1, True),
        (cfg.rows, 70, 2 * cfg.cols, False),
        (1, 1, 1, True),
    ]
    cases = [gemm_case(cfg, rng, m, k, n, requant=rq) for m, k, n, rq in shapes]
    transport = SimTransport(cfg, idle_prob=0.1, stall_prob=0.2, seed=seed)
    results = run_many([prog for prog, _ in cases], transport)
    for (m, k, n, _), (_, want), res in zip(shapes, cases, results, strict=True):
        assert np.array_equal(res.output, want), f"seed {seed}: {m}x{k}x{n} differs from golden"


@pytest.mark.parametrize("cfg_name", ["tiny", "default"])
def test_extreme_values(cfg_name):
    """-128 x -128 and 127 x 127 at the largest K (raw), and saturating requantisation."""
    cfg = ACCEL_CONFIGS[cfg_name]
    seed = runner.test_seed(f"extreme:{cfg_name}")
    rng = np.random.default_rng(seed)
    k = min(cfg.max_k, cfg.a_depth // 2, cfg.b_depth // 2)
    cases = [
        gemm_case(cfg, rng, cfg.rows + 1, k, cfg.cols, requant=False, fill=(-128, -128)),
        gemm_case(cfg, rng, cfg.rows, k, cfg.cols + 2, requant=False, fill=(127, 127)),
        gemm_case(cfg, rng, cfg.rows, k, cfg.cols, requant=False, fill=(-128, 127)),
    ]
    # the largest K of the config, split into accumulated chunks by the compiler
    cases.append(gemm_case(cfg, rng, 1, cfg.max_k, 1, requant=False, fill=(-128, -128)))
    # requantisation corner cases: INT32_MIN multiplier, big left shift, clamps
    a = np.full((cfg.rows, 3), -128, np.int8)
    b = np.full((3, cfg.cols), -128, np.int8)
    n = cfg.cols
    bias = np.full(n, 2**31 - 1, np.int32)  # acc + bias saturates (flagged)
    rq = Requant(np.full(n, -(2**31)), np.full(n, 31), zero_point=5, act_min=-3, act_max=3)
    acc = golden.matmul(a, b)
    want = golden.requantize(acc, bias, rq.multiplier, rq.shift, 5, -3, 3)
    cases.append((compile_gemm(cfg, a, b, bias=bias, requant=rq), want))
    results = run_many([p for p, _ in cases], SimTransport(cfg, stall_prob=0.3, seed=seed))
    for idx, (res, (_, want)) in enumerate(zip(results, cases, strict=True)):
        assert np.array_equal(res.output, want), f"seed {seed}: case {idx} differs"
    assert results[-1].status["saturated"] == 1
    assert all(r.status["saturated"] == 0 for r in results[:-1])


@pytest.mark.parametrize("requant", [False, True])
def test_utilization_large_gemm_default(requant):
    """M = N = K = 8x the array on `default`: at least 95 % of peak MACs/cycle, raw int32
    and requantised int8.

    The program's fixed cost (first panels, and parameters when requantised, before the
    array can start; the last tile's drain) must stay under ~5 % of its 4096 compute
    cycles. Measured: raw 4304 cycles (0.952), requantised 4310 (0.950; parameter
    records are 2 words per channel on the 8-byte stream).
    """
    floor = 0.95
    cfg = preset("default")
    rng = np.random.default_rng(7)
    size = 8 * cfg.rows
    prog, want = gemm_case(cfg, rng, size, size, size, requant=requant)
    res = run_many([prog], SimTransport(cfg))[0]
    assert np.array_equal(res.output, want)
    util = prog.macs / (res.cycles * cfg.peak_macs_per_cycle)
    assert util >= floor, f"utilization {util:.3f} ({res.cycles} cycles)"
    assert res.counters["busy"] == 64 * size  # tiles x K slices
    assert res.counters["macs"] == res.counters["busy"] * cfg.peak_macs_per_cycle
    assert res.counters["stalls"] <= 8  # the row FIFO keeps the array running


# -- error handling and fuzzing -------------------------------------------------------


@pytest.mark.parametrize(
    "cfg_name, seed_index", [("tiny", 0), ("tiny", 1), ("tiny", 2), ("2x8", 0), ("default", 0)]
)
def test_fuzz_command_stream(cfg_name, seed_index):
    """Junk commands interleaved with GEMMs: right error codes, no hang, GEMMs still exact."""
    cfg = ACCEL_CONFIGS[cfg_name]
    seed = runner.test_seed(f"fuzz:{cfg_name}:{seed_index}")
    segments, checks = fuzz_case(cfg, np.random.default_rng(seed), 40)
    transport = SimTransport(cfg, idle_prob=0.15, stall_prob=0.15, seed=seed)
    problems = check_case(checks, transport.execute(segments))
    assert not problems, f"seed {seed}: {problems[:3]}"
    assert sum(1 for c in checks if c and c[0] == "gemm") == 40 // 8


# -- narrow address arithmetic: every field that cannot fit a buffer ------------------------


def edge_commands(cfg: AccelConfig) -> list[list[int]]:
    """Commands at and just past every buffer edge, and with high bits set in 16/32-bit fields.

    The decoder's range arithmetic is only as wide as the buffers; these pin
    down that a large address or count is still caught (high-bit OR) and that
    an end point exactly at the depth is accepted.
    """
    op = isa.Opcode
    cmds = []

    def load(opcode, addr, count, data_words):
        cmds.append([isa.header(opcode, 2 + data_words), addr, count, *[0x01] * data_words])

    for opcode, depth, wpe in (
        (op.LOAD_A, cfg.a_depth, cfg.a_words_per_entry),
        (op.LOAD_B, cfg.b_depth, cfg.b_words_per_entry),
    ):
        load(opcode, depth - 1, 1, wpe)  # last entry: fine
        load(opcode, depth, 0, 0)  # empty load at the end: fine
        load(opcode, depth + 1, 0, 0)  # past the end
        load(opcode, depth, 1, wpe)
        for addr in (1 << 16, 1 << 31, 2**32 - 1, 2 * depth):
            load(opcode, addr, 1, wpe)
        load(opcode, 0, (1 << 24) + 1, wpe)  # count with high bits: length mismatch
        load(opcode, 0, depth + 1, 0)  # count past the end
        load(opcode, 1, 2**32 - 1, 0)
    pd, cols = cfg.param_depth, cfg.cols
    for group, count in (
        (pd - 1, cols),  # last group: fine
        (pd - 1, cols + 1),  # one channel too many
        (pd, 0),
        (1 << 16, 0),
        (1 << 31, 1),
        (0, pd * cols + 1),
        (0, (1 << 24) + 1),
    ):
        wpc = isa.param_words_per_channel(cfg.bus_bytes)
        n = wpc * count if count < 1 << 20 else wpc
        cmds.append([isa.header(op.LOAD_PARAM, 2 + n), group, count, *[0] * n])

    def matmul(a_addr, b_addr, k, flags=0, group=0, clamp=0x7F8000):
        word1 = k | flags << 16 | group << 24
        cmds.append([isa.header(op.MATMUL, 3), a_addr | b_addr << 16, word1, clamp])

    ad, bd = cfg.a_depth, cfg.b_depth
    matmul(ad - 1, bd - 1, 1)  # fine
    matmul(ad - 2, bd - 2, 2)  # both ends exactly at the depth: fine
    matmul(0xFFFF, 0, 1)
    matmul(0, 0xFFFF, 1)
    matmul(ad, 0, 1)
    matmul(0, bd, 1)
    matmul(0, 0, 0xFFFF)
    matmul(0, 0, max(ad, bd) + 1)
    matmul(0, 0, 1, flags=2, group=pd)  # int8 store, group past the parameters
    matmul(0, 0, 1, flags=2 | 4, group=255)  # raw store: group unchecked, fine
    matmul(0, 0, 1, flags=2, group=pd - 1)  # fine
    return cmds


@pytest.mark.parametrize("cfg_name", ["tiny", "4x4-small"])
def test_edge_ranges_match_isa_model(cfg_name):
    """Every edge command gets the isa_model's error code (narrow range checks stay exact)."""
    cfg = ACCEL_CONFIGS[cfg_name]
    model = IsaModel(cfg)
    segments, codes = [Segment(cmd_status(clear=True), 1)], [None]
    for cmd in edge_commands(cfg):
        code, n_results = model.step(cmd)
        segments.append(Segment(cmd + cmd_status(clear=True), n_results + 1))
        codes.append((cmd, code))
    results = SimTransport(cfg, idle_prob=0.1, stall_prob=0.2, seed=3).execute(segments)
    for check, res in zip(codes, results, strict=True):
        if check is None:
            continue
        cmd, code = check
        status = decode_status(res.results[-1] & 0xFFFFFFFF)
        assert status["error"] == code, (
            f"{[hex(w) for w in cmd[:4]]}: error {status['error']}, expected {code.name}"
        )


@pytest.mark.parametrize("cfg_name", ["tiny", "default", "2x2-wide"])
def test_shift_truncated_flag(cfg_name):
    """A shift outside the 6 stored bits sets STATUS ``shift_truncated`` (and only then),
    on 4-, 8- and 16-byte streams, where the record's shift sits in a different word."""
    cfg = ACCEL_CONFIGS[cfg_name]
    segments = [Segment(cmd_status(clear=True), 1)]
    cases = [(-32, 0), (31, 0), (32, 1), (-33, 1), (2**31 - 1, 1), (-(2**31), 1)]
    for shift, _ in cases:
        load = cmd_load_params(0, [-1, 7], [2**31 - 1, -(2**31)], [0, shift], cfg.bus_bytes)
        segments.append(Segment(load + cmd_status(clear=True), 1))
    results = SimTransport(cfg, seed=5).execute(segments)
    for (shift, want), res in zip(cases, results[1:], strict=True):
        status = decode_status(res.results[-1] & 0xFFFFFFFF)
        assert status["shift_truncated"] == want, f"shift {shift}: {status}"
        assert status["error"] == 0, f"shift {shift}: {status}"


def test_skid_buffer_order_stability_throughput():
    """SkidBuffer: in order, payload stable while stalled, one transfer per cycle when open."""
    from amaranth.sim import Simulator

    from macforge.hw.skid import SkidBuffer

    dut = SkidBuffer(16)
    rng = np.random.default_rng(11)
    n = 400
    sent, got = [], []
    open_run = []  # cycles with both sides always willing (throughput check)

    async def testbench(ctx):
        nxt = 0
        held = None
        for cycle in range(3 * n):
            burst = cycle < 60 or cycle >= 2 * n  # free-flowing phases
            in_valid = nxt < n and (burst or rng.random() < 0.6)
            out_ready = burst or rng.random() < 0.5
            ctx.set(dut.i.valid, in_valid)
            ctx.set(dut.i.payload, nxt)
            ctx.set(dut.o.ready, out_ready)
            o_valid, o_payload = ctx.get(dut.o.valid), ctx.get(dut.o.payload)
            if held is not None:
                assert o_valid and o_payload == held, "payload changed while stalled"
            took_in = in_valid and ctx.get(dut.i.ready)
            took_out = o_valid and out_ready
            held = o_payload if o_valid and not out_ready else None
            if took_out:
                got.append(o_payload)
            if took_in:
                sent.append(nxt)
                nxt += 1
            if 5 <= cycle < 60:
                open_run.append(took_in and took_out)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert got == sent == list(range(n))
    assert all(open_run), "skid buffer lost throughput with both sides open"


def test_program_for_another_config_is_refused():
    """A program compiled for one config never runs on hardware generated from another,
    even when the stream widths agree (4x4 program, 8x8 model: both 4-byte words)."""
    small = AccelConfig(rows=4, cols=4, acc_width=24, max_k=511, bus_bytes=4, name="p4x4")
    big = AccelConfig(rows=8, cols=8, acc_width=24, max_k=511, bus_bytes=4, name="p8x8")
    a = np.ones((4, 8), np.int8)
    prog = compile_gemm(small, a, a.T.copy())
    with pytest.raises(ValueError, match=r"config 'p4x4' \(rows=4\) cannot run on .* 'p8x8'"):
        run_many([prog], SimTransport(big))
    renamed = AccelConfig(rows=4, cols=4, acc_width=24, max_k=511, bus_bytes=4, name="other")
    check_same_hardware(small, renamed)  # the name alone does not change the hardware
