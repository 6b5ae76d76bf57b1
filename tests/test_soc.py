"""The board-level design (accelerator + framed UART) driven through its rx/tx pins.

A UART model in cocotb plays the host: frames are built by `host.link`, so
the host side of the protocol is exercised too. Faults are injected on the
wire: flipped bits, truncated frames, dropped bytes, duplicates, wrong
sequence numbers. The GEMM behind them must still come out bit-exact, with
no command run twice or in part.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from macforge.host.compiler import Requant, compile_gemm
from macforge.host.link import Nack, encode_frame, split_words
from macforge.host.program import cmd_status, decode_status
from macforge.hw.presets import preset
from macforge.hw.soc import AcceleratorSoC
from macforge.sim import bench_io, golden, runner

CFG = preset("tiny")
SIM_CLK_HZ, SIM_BAUD = 10_000_000, 1_000_000  # 10 cycles per bit keeps the bench quick
MAX_WORDS = 16


def run_script(script, *, clk_hz=SIM_CLK_HZ, baud=SIM_BAUD, cfg=CFG):
    soc = AcceleratorSoC(cfg, clk_hz=clk_hz, baud=baud, max_words=MAX_WORDS)
    b = runner.build(soc, name=f"soc_{cfg.key.replace('-', '_')}_{clk_hz}_{baud}")
    with tempfile.TemporaryDirectory(prefix="macforge-soc-") as tmp:
        io = Path(tmp)
        (io / "script.json").write_text(json.dumps(script))
        runner.run(
            b,
            test_module="macforge.sim.tb_soc",
            testcase="run_script",
            env={
                bench_io.ENV_IO: str(io),
                bench_io.ENV_CLK_PS: str(round(1e12 / clk_hz)),
                bench_io.ENV_BAUD: str(baud),
                bench_io.ENV_BUS_BYTES: str(cfg.bus_bytes),
            },
        )
        return json.loads((io / "out.json").read_text())


def frame(seq, words):
    return list(encode_frame(seq, words, CFG.bus_bytes))


def small_gemm(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, size=(3, 5), dtype=np.int8)
    b = rng.integers(-128, 128, size=(5, 3), dtype=np.int8)
    bias = rng.integers(-500, 500, size=3).astype(np.int32)
    rq = Requant(np.full(3, 1 << 30), np.full(3, -5), zero_point=1, act_min=-100, act_max=100)
    prog = compile_gemm(CFG, a, b, bias=bias, requant=rq)
    want = golden.requantize(golden.matmul(a, b), bias, rq.multiplier, rq.shift, 1, -100, 100)
    return prog, want


WAIT = {"expect_reply": True, "wait_us": 3000}


@pytest.mark.parametrize(
    "clk_hz, baud, seed",
    [
        (SIM_CLK_HZ, SIM_BAUD, 1),
        # the boards' default rate: 3 Mbaud from a 15 MHz clock, 5 cycles per bit
        (15_000_000, 3_000_000, 3),
    ],
)
def test_gemm_over_uart_bit_exact(clk_hz, baud, seed):
    prog, want = small_gemm(seed)
    words = prog.words + cmd_status()
    chunks = split_words(words, MAX_WORDS)
    script = [{"send": frame(0, [])}, WAIT]
    for i, chunk in enumerate(chunks, start=1):
        script += [{"send": frame(i, chunk)}, WAIT]
    total = prog.result_words + 1
    script.append({"collect": total, "wait_us": 5000})
    out = run_script(script, clk_hz=clk_hz, baud=baud)
    assert [r["kind"] for r in out["replies"]] == ["ack"] * (len(chunks) + 1)
    assert [r["seq"] for r in out["replies"]] == list(range(len(chunks) + 1))
    assert len(out["words"]) == total and out["corrupt"] == 0 and out["framing_errors"] == 0
    assert np.array_equal(prog.decode(out["words"][:-1]), want)
    assert decode_status(out["words"][-1])["error"] == 0


def test_corrupted_truncated_duplicated_frames_recover():
    prog, want = small_gemm(2)
    words = prog.words + cmd_status()
    chunks = split_words(words, MAX_WORDS)
    assert len(chunks) >= 3
    good = [frame(i, c) for i, c in enumerate(chunks, start=1)]
    flipped = list(good[0])
    flipped[7] ^= 0x10  # a payload bit: CRC must catch it
    dropped = good[1][:9] + good[1][10:]  # one byte lost on the wire
    script = [
        {"send": frame(0, [])},
        WAIT,  # session reset -> ACK 0
        {"send": flipped},
        WAIT,  # -> NACK CRC
        {"send": good[0]},
        WAIT,  # -> ACK 1
        {"send": good[0]},
        WAIT,  # duplicate -> ACK 1 again, not executed twice
        {"send": frame(9, chunks[1])},
        WAIT,  # wrong sequence -> NACK SEQUENCE
        {"send": good[1], "cut": 12},
        WAIT,  # truncated -> NACK TIMEOUT
        {"send": dropped},
        WAIT,  # short by a byte -> NACK TIMEOUT
        {"send": good[1]},
        WAIT,  # -> ACK 2
    ]
    for f in good[2:]:
        script += [{"send": f}, WAIT]
    script += [{"send": good[-1]}, WAIT]  # duplicate of the frame holding STATUS
    total = prog.result_words + 1
    script.append({"collect": total, "wait_us": 5000})
    out = run_script(script)
    got = [(r["kind"], r["seq"], r["reason"]) for r in out["replies"]]
    n = len(chunks)
    expect = (
        [
            ("ack", 0, 0),
            ("nack", 1, Nack.CRC),
            ("ack", 1, 0),
            ("ack", 1, 0),
            ("nack", 9, Nack.SEQUENCE),
            ("nack", 2, Nack.TIMEOUT),
            ("nack", 2, Nack.TIMEOUT),
            ("ack", 2, 0),
        ]
        + [("ack", i, 0) for i in range(3, n + 1)]
        + [("ack", n, 0)]
    )
    assert got == expect
    # exactly one STATUS answer: nothing ran twice, nothing ran from a bad frame
    assert len(out["words"]) == total, f"{len(out['words'])} result words, expected {total}"
    assert np.array_equal(prog.decode(out["words"][:-1]), want)
    assert decode_status(out["words"][-1])["error"] == 0


@pytest.mark.slow
def test_default_baud_115200_at_12mhz():
    """The iCEBreaker clock and the default rate: reset, one STATUS round trip."""
    script = [
        {"send": frame(0, [])},
        {"expect_reply": True, "wait_us": 20000},
        {"send": frame(1, cmd_status())},
        {"expect_reply": True, "wait_us": 20000},
        {"collect": 1, "wait_us": 20000},
    ]
    out = run_script(script, clk_hz=12_000_000, baud=115_200)
    assert [r["kind"] for r in out["replies"]] == ["ack", "ack"]
    assert len(out["words"]) == 1 and decode_status(out["words"][0])["error"] == 0
