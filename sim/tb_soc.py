"""cocotb bench for `hw.soc.AcceleratorSoC`: a UART host on the board's rx/tx pins.

Environment: ``MACFORGE_IO`` (folder with ``script.json``), ``MACFORGE_CLK_PS``
(clock period) and ``MACFORGE_BAUD``. The script is a list of actions, run in
order; the bench is deliberately dumb, the checks live in ``tests/test_soc.py``:

* ``{"send": [bytes...], "cut": N}`` send the bytes on ``rx`` at the baud rate
  (only the first N when ``cut`` is given: a truncated frame);
* ``{"expect_reply": true, "wait_us": T}`` wait up to T µs for the next ACK/NACK;
* ``{"collect": N, "wait_us": T}`` wait until N result words have arrived.

A UART receiver on ``tx`` decodes every byte (8N1, checking start and stop
bits) into the host-side `host.link.FrameParser`. Writes ``out.json``:
the replies seen, the result words and the number of corrupt frames.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from macforge.host.link import FrameParser
from macforge.sim import bench_io


class UartSource:
    """Drives a serial line: 8N1, LSB first, ``bit_ps`` per bit."""

    def __init__(self, pin, bit_ps: int) -> None:
        self.pin, self.bit_ps = pin, bit_ps
        pin.value = 1

    async def send(self, data: bytes) -> None:
        for byte in data:
            for level in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.pin.value = level
                await Timer(self.bit_ps, unit="ps")


class UartSink:
    """Receives bytes from a serial line and feeds them to a `FrameParser`."""

    def __init__(self, pin, bit_ps: int, parser: FrameParser) -> None:
        self.pin, self.bit_ps, self.parser = pin, bit_ps, parser
        self.frames = []
        self.framing_errors = 0

    async def run(self) -> None:
        while True:
            await FallingEdge(self.pin)
            await Timer(self.bit_ps // 2, unit="ps")
            if int(self.pin.value) != 0:
                continue  # glitch
            byte = 0
            for i in range(8):
                await Timer(self.bit_ps, unit="ps")
                byte |= int(self.pin.value) << i
            await Timer(self.bit_ps, unit="ps")
            if int(self.pin.value) != 1:
                self.framing_errors += 1
            self.frames.extend(self.parser.feed(bytes([byte])))


@cocotb.test()
async def run_script(dut):
    io = Path(os.environ[bench_io.ENV_IO])
    script = json.loads((io / "script.json").read_text())
    clk_ps = int(os.environ[bench_io.ENV_CLK_PS])
    bit_ps = round(1e12 / int(os.environ[bench_io.ENV_BAUD]))
    bus_bytes = int(os.environ[bench_io.ENV_BUS_BYTES])
    dut.rx.value = 1
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, clk_ps, period_high=clk_ps // 2, unit="ps").start())
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    parser = FrameParser(bus_bytes)
    source = UartSource(dut.rx, bit_ps)
    sink = UartSink(dut.tx, bit_ps, parser)
    cocotb.start_soon(sink.run())

    replies: list[dict] = []
    words: list[int] = []
    seen = 0

    def drain() -> None:
        nonlocal seen
        for f in sink.frames[seen:]:
            if f.kind == "data":
                words.extend(f.words)
            else:
                replies.append({"kind": f.kind, "seq": f.seq, "reason": f.reason})
        seen = len(sink.frames)

    for step, action in enumerate(script):
        if "send" in action:
            data = bytes(action["send"])
            await source.send(data[: action["cut"]] if "cut" in action else data)
        elif "expect_reply" in action:
            before = len(replies)
            waited = 0
            while len(replies) == before and waited < action["wait_us"]:
                await Timer(1, unit="us")
                waited += 1
                drain()
            assert len(replies) > before, f"step {step}: no ACK/NACK within {waited} us"
        elif "collect" in action:
            waited = 0
            while len(words) < action["collect"] and waited < action["wait_us"]:
                await Timer(1, unit="us")
                waited += 1
                drain()
            assert len(words) >= action["collect"], (
                f"step {step}: {len(words)} of {action['collect']} result words"
            )
    await Timer(50 * bit_ps, unit="ps")
    drain()
    (io / "out.json").write_text(
        json.dumps(
            {
                "replies": replies,
                "words": words,
                "corrupt": parser.corrupt,
                "framing_errors": sink.framing_errors,
            }
        )
    )
