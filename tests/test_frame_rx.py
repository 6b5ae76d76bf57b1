"""The serial receiver's sequence rules on the RTL (`hw.frame_rx.FrameReceiver`, Amaranth
simulator): a retransmission of the previous frame is ACKed again and not run, also
where the 8-bit sequence number wraps (255 after 0 is expected: the formal property
`frame_rx` found this case answered with NACK SEQUENCE)."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from macforge.host.link import encode_frame
from macforge.hw.frame_rx import FrameReceiver
from macforge.hw.link_protocol import FrameType, Nack

BUS_BYTES = 4


def _exchange(frames: list[bytes]) -> list[tuple[list[int], int, int, int]]:
    """Feed ``frames`` one byte per cycle; per frame: (words delivered, reply kind,
    reason, seq)."""
    dut = FrameReceiver(bus_bytes=BUS_BYTES, max_words=4, timeout=10_000)
    out = []

    async def bench(ctx):
        ctx.set(dut.cmd.ready, 1)
        for frame in frames:
            words = []
            for byte in frame:
                ctx.set(dut.rx.payload, byte)
                ctx.set(dut.rx.valid, 1)
                await ctx.tick()
                if ctx.get(dut.cmd.valid):
                    words.append(ctx.get(dut.cmd.payload))
            ctx.set(dut.rx.valid, 0)
            for _ in range(200):
                if ctx.get(dut.cmd.valid):
                    words.append(ctx.get(dut.cmd.payload))
                if ctx.get(dut.reply.req):
                    reply = (ctx.get(dut.reply.kind), ctx.get(dut.reply.reason))
                    seq = ctx.get(dut.reply.seq)
                    ctx.set(dut.reply.done, 1)
                    await ctx.tick()
                    ctx.set(dut.reply.done, 0)
                    break
                await ctx.tick()
            else:
                raise AssertionError(f"no reply to {frame.hex()}")
            out.append((words, *reply, seq))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("first", [254, 10])
def test_retransmission_of_previous_frame_is_acked_not_run(first):
    seq = (first + 1) & 0xFF  # the data frame after the session reset
    nxt = (seq + 1) & 0xFF
    replies = _exchange(
        [
            encode_frame(first, [], BUS_BYTES),  # session reset: next expected first + 1
            encode_frame(seq, [0x11223344], BUS_BYTES),
            encode_frame(seq, [0x11223344], BUS_BYTES),  # its ACK was lost: sent again
            encode_frame(nxt, [0x55667788], BUS_BYTES),
            encode_frame((nxt + 5) & 0xFF, [1], BUS_BYTES),  # out of order
        ]
    )
    ack, nack = int(FrameType.ACK), int(FrameType.NACK)
    assert replies[0] == ([], ack, 0, first)
    assert replies[1] == ([0x11223344], ack, 0, seq)
    assert replies[2] == ([], ack, 0, seq), "a retransmission must be ACKed, not run"
    assert replies[3] == ([0x55667788], ack, 0, nxt)
    assert replies[4][:3] == ([], nack, int(Nack.SEQUENCE))
