"""SerialTransport's protocol handling against a fake board (lost ACKs, NACKs, silence).

The real bridge is checked in RTL by tests/test_soc.py; here the host's retry
rules are checked in isolation, quickly.
"""

from __future__ import annotations

import pytest

from macforge.host.link import FrameParser, LinkError, crc16, encode_frame
from macforge.host.runtime import Segment
from macforge.host.serial import SerialTransport
from macforge.hw.link_protocol import Nack
from macforge.hw.presets import preset

CFG = preset("tiny")
NB = CFG.bus_bytes


def device_frame(kind: int, a: int, b: int, payload: bytes = b"") -> bytes:
    body = bytes([kind, a, b]) + payload
    return bytes([0x5A]) + body + crc16(body).to_bytes(2, "little")


class FakeBoard:
    """Speaks the bridge protocol; each executed frame 'returns' its words + 1 as results."""

    def __init__(self, *, lose_acks=(), corrupt_frames=(), silent=False):
        self.expected = 0
        self.out = bytearray()
        self.executed: list[list[int]] = []
        self.lose_acks = set(lose_acks)  # frame numbers (1-based arrivals) whose ACK is lost
        self.corrupt_frames = set(corrupt_frames)
        self.silent = silent
        self.arrivals = 0
        self.dseq = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.arrivals += 1
        if self.silent:
            return
        data = bytearray(data)
        if self.arrivals in self.corrupt_frames:
            data[-3] ^= 0x01
        seq, n = data[1], int.from_bytes(data[2:4], "little")
        body, crc = bytes(data[1:-2]), int.from_bytes(data[-2:], "little")
        if crc16(body) != crc:
            self.out += device_frame(2, seq, Nack.CRC)
            return
        words = [int.from_bytes(data[4 + i * NB : 4 + (i + 1) * NB], "little") for i in range(n)]
        if n == 0:
            self.expected = (seq + 1) & 0xFF
        elif seq == self.expected:
            self.expected = (seq + 1) & 0xFF
            self.executed.append(words)
            payload = b"".join((w + 1).to_bytes(NB, "little") for w in words)
            self.out += device_frame(3, self.dseq, len(words), payload)
            self.dseq += 1
        elif seq != (self.expected - 1) & 0xFF:
            self.out += device_frame(2, seq, Nack.SEQUENCE)
            return
        if self.arrivals not in self.lose_acks:
            self.out += device_frame(1, seq, 0)

    def read(self, n: int) -> bytes:
        chunk, self.out = bytes(self.out[:n]), self.out[n:]
        return chunk

    def close(self) -> None:
        self.closed = True


def transport(board, **kw):
    return SerialTransport(
        "fake",
        config=CFG,
        max_words=4,
        timeout=0.05,
        retries=3,
        open_port=lambda port, baud: board,
        **kw,
    )


def test_frames_split_acked_and_results_returned():
    board = FakeBoard()
    words = list(range(10, 20))  # 10 words -> frames of 4, 4, 2
    res = transport(board).execute([Segment(words, 10)])
    assert board.executed == [words[0:4], words[4:8], words[8:10]]
    assert res[0].results == [w + 1 for w in words]
    assert board.closed


def test_lost_ack_is_retried_without_running_twice():
    board = FakeBoard(lose_acks={2})  # the ACK of the first data frame is lost
    t = transport(board)
    res = t.execute([Segment([1, 2, 3], 3)])
    assert board.executed == [[1, 2, 3]]  # executed once although sent twice
    assert res[0].results == [2, 3, 4]
    assert t.retransmissions == 1


def test_corrupted_frame_is_nacked_and_resent():
    board = FakeBoard(corrupt_frames={2})
    t = transport(board)
    res = t.execute([Segment([7, 8], 2)])
    assert board.executed == [[7, 8]] and res[0].results == [8, 9]
    assert t.retransmissions == 1


def test_silent_board_raises_after_retries():
    board = FakeBoard(silent=True)
    with pytest.raises(LinkError, match="not acknowledged after 4 tries \\(no answer\\)"):
        transport(board).execute([Segment([1], 1)])
    assert board.arrivals == 4 and board.closed


def test_corrupted_result_frame_is_an_error():
    parser = FrameParser(NB)
    good = device_frame(3, 0, 1, (5).to_bytes(NB, "little"))
    bad = bytearray(good)
    bad[5] ^= 0x40
    assert parser.feed(bytes(bad)) == [] and parser.corrupt == 1
    frames = parser.feed(good)
    assert frames[0].kind == "data" and frames[0].words == (5,)


def test_encode_frame_layout():
    f = encode_frame(3, [0x11223344], 4)
    assert f[0] == 0xA5 and f[1] == 3 and f[2:4] == b"\x01\x00"
    assert f[4:8] == bytes([0x44, 0x33, 0x22, 0x11])
    assert int.from_bytes(f[-2:], "little") == crc16(f[1:-2])
    assert crc16(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value


# -- hw.uart at the fast rates: ~5..12 clock cycles per bit, sender off by up to 2 % ---------


def _uart_rx_bytes(divisor: int, rate_error: float, data: bytes) -> tuple[list[int], int]:
    """Drive UARTRx with 8N1 bytes whose bit period is ``divisor * (1 + rate_error)`` cycles."""
    from amaranth.sim import Simulator

    from macforge.hw.uart import UARTRx

    dut = UARTRx(divisor)
    got: list[int] = []
    errors = 0
    period = divisor * (1 + rate_error)

    async def sender(ctx):
        t = 0.0  # bit edges in fractional cycles; the line changes on the nearest clock
        cycle = 0
        for i, byte in enumerate(data):
            bits = [0] + [(byte >> k) & 1 for k in range(8)] + [1]
            gap = (i % 3) * 0.37 * divisor  # idle gaps of varying phase between bytes
            for bit, length in [(1, gap)] + [(b, period) for b in bits]:
                ctx.set(dut.rx, bit)
                t += length
                while cycle < round(t):
                    await ctx.tick()
                    cycle += 1
        await ctx.tick().repeat(3 * divisor)

    async def receiver(ctx):
        nonlocal errors
        ctx.set(dut.data.ready, 1)
        async for _, _, payload, valid, frame_error in ctx.tick().sample(
            dut.data.payload, dut.data.valid, dut.frame_error
        ):
            if valid:
                got.append(payload)
            errors += frame_error

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(sender)
    sim.add_testbench(receiver, background=True)
    sim.run()
    return got, errors


@pytest.mark.parametrize("divisor", [4, 5, 10, 12])
@pytest.mark.parametrize("rate_error", [-0.02, 0.0, 0.02])
def test_uart_rx_samples_mid_bit_at_small_divisors(divisor, rate_error):
    data = bytes([0x55, 0xAA, 0x00, 0xFF, 0x01, 0x80, 0x7E, 0xC3])
    got, errors = _uart_rx_bytes(divisor, rate_error, data)
    assert errors == 0 and bytes(got) == data


def test_divisor_for_names_a_rate_that_works():
    from macforge.hw.uart import divisor_for, fastest_baud

    assert divisor_for(36_000_000, 3_000_000) == 12
    assert divisor_for(15_000_000, 3_000_000) == 5
    assert fastest_baud(25_000_000) == 1_500_000 and fastest_baud(12_000_000) == 3_000_000
    with pytest.raises(ValueError, match=r"off by 4.2 % \(> 2 %\); 1500000 baud works"):
        divisor_for(25_000_000, 3_000_000)
    with pytest.raises(ValueError, match="needs >= 4 clock cycles per bit"):
        divisor_for(10_000_000, 3_000_000)


def test_link_estimate_from_frame_formats():
    from macforge.host.serial import ACK_BYTES, COMMAND_OVERHEAD, link_estimate

    assert COMMAND_OVERHEAD == 6 and ACK_BYTES == 6
    est = link_estimate(CFG, baud=3_000_000, max_words=64)
    full = 64 * CFG.bus_bytes
    assert est["link_bytes_per_s"] == round(300_000 * full / (full + 12))
    assert est["link_gemm64_frames"] > 0 and est["link_gemm64_seconds"] > 0
    slow = link_estimate(CFG, baud=115_200, max_words=64)
    assert slow["link_gemm64_seconds"] == pytest.approx(
        est["link_gemm64_seconds"] * 3_000_000 / 115_200, rel=1e-3
    )
