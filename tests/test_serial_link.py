"""SerialTransport's protocol handling against a fake board (lost ACKs, NACKs, silence).

The real bridge is checked in RTL by tests/test_soc.py; here the host's retry
rules are checked in isolation, quickly.
"""

from __future__ import annotations

import pytest

from host.link import FrameParser, LinkError, crc16, encode_frame
from host.runtime import Segment
from host.serial import SerialTransport
from hw.bridge import Nack
from hw.config import preset

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
