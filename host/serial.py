"""`SerialTransport`: runs programs on a board over the framed UART link (pyserial).

Every command frame is retried until it is acknowledged; the bridge's sequence
numbers make a retry of an already executed frame a harmless re-ACK, so no
command runs twice. Result words arrive in CRC-checked DATA frames; a lost or
corrupted DATA frame cannot be recovered and raises `LinkError`.

Usage::

    transport = SerialTransport("/dev/ttyUSB1", config=preset("icebreaker"), baud=3_000_000)
    result = host.runtime.run(program, transport)

`link_estimate` gives the link's payload rate and the wire time of a GEMM from
the frame formats of `host.link`, for build reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from macforge.hw.config import AccelConfig
from macforge.hw.link_protocol import MAX_DATA_WORDS

from .link import DeviceFrame, FrameParser, LinkError, Nack, encode_frame, split_words
from .runtime import Segment, SegmentResult

__all__ = ["SerialTransport", "LinkError", "link_estimate", "DEFAULT_BAUD"]

#: serial rate of the boards' bitstreams (FT2232H / FT231X at 3 Mbaud)
DEFAULT_BAUD = 3_000_000
#: 8N1: start + 8 data + stop bits per byte
BITS_PER_BYTE = 10
#: bytes around a command frame's payload: sync, seq, len (2), CRC (2)
COMMAND_OVERHEAD = len(encode_frame(0, [], 1))
#: an ACK/NACK frame, and the bytes around a DATA frame's payload (see `FrameParser`)
ACK_BYTES = DATA_OVERHEAD = 6


def link_estimate(
    config: AccelConfig, *, baud: int, max_words: int = 64, gemm: int = 64
) -> dict[str, float | int | None]:
    """Wire-level limits of the link (no USB latency, no compute time).

    The host sends command frames of up to ``max_words`` words and waits for each
    ACK (stop-and-wait); results come back in DATA frames of up to
    `hw.bridge.MAX_DATA_WORDS` words. Returns

    - ``link_bytes_per_s``: command payload bytes/s in full frames, ACK wait included
    - ``link_result_bytes_per_s``: result payload bytes/s in full DATA frames
    - ``link_gemm{N}_seconds``: wire time to send an N x N x N int8 GEMM (requantised,
      int8 results) as `host.compiler.compile_gemm` encodes it and read its results
    - ``link_gemm{N}_frames``: command frames it takes; each also costs one USB round
      trip (~1-2 ms with the FTDI latency timer at 1 ms, 16 ms by default)

    The GEMM keys are None when ``config`` cannot run that GEMM.
    """
    if baud <= 0 or max_words < 1:
        raise ValueError(f"baud {baud} and max_words {max_words} must be positive")
    from .compiler import Requant, compile_gemm

    bb = config.bus_bytes
    byte_s = BITS_PER_BYTE / baud
    full = max_words * bb
    out: dict[str, float | int | None] = {
        "link_bytes_per_s": round(full / ((full + COMMAND_OVERHEAD + ACK_BYTES) * byte_s)),
        "link_result_bytes_per_s": round(
            MAX_DATA_WORDS * bb / ((MAX_DATA_WORDS * bb + DATA_OVERHEAD) * byte_s)
        ),
    }
    try:
        ones = np.ones((gemm, gemm), np.int8)
        rq = Requant(np.full(gemm, 1 << 30), np.full(gemm, -8))
        prog = compile_gemm(config, ones, ones, requant=rq)
    except ValueError:  # the config cannot run this GEMM
        out[f"link_gemm{gemm}_seconds"] = out[f"link_gemm{gemm}_frames"] = None
        return out
    frames = split_words(prog.words, max_words)
    sent = sum(COMMAND_OVERHEAD + len(f) * bb + ACK_BYTES for f in frames)
    results = prog.result_words
    received = results * bb + math.ceil(results / MAX_DATA_WORDS) * DATA_OVERHEAD
    out[f"link_gemm{gemm}_seconds"] = round((sent + received) * byte_s, 4)
    out[f"link_gemm{gemm}_frames"] = len(frames)
    return out


class _Session:
    def __init__(self, port: Any, bus_bytes: int, timeout: float, retries: int) -> None:
        self.port, self.bus_bytes, self.timeout, self.retries = port, bus_bytes, timeout, retries
        self.parser = FrameParser(bus_bytes)
        self.results: list[int] = []
        self.next_dseq = 0
        self.seq = 0
        self.retransmissions = 0

    def _poll(self) -> list[DeviceFrame]:
        data = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
        frames = self.parser.feed(data) if data else []
        control = []
        for f in frames:
            if f.kind == "data":
                if f.seq != self.next_dseq:
                    raise LinkError(
                        f"result data lost: DATA frame {self.next_dseq} missing (got {f.seq})"
                    )
                self.next_dseq = (self.next_dseq + 1) & 0xFF
                self.results.extend(f.words)
            else:
                control.append(f)
        if self.parser.corrupt:
            raise LinkError(f"{self.parser.corrupt} corrupted frame(s) from the device")
        return control

    def send(self, words: Sequence[int]) -> None:
        frame = encode_frame(self.seq, words, self.bus_bytes)
        last = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                self.retransmissions += 1
            self.port.write(frame)
            deadline = time.monotonic() + self.timeout
            answered = False
            while time.monotonic() < deadline and not answered:
                for f in self._poll():
                    if f.seq != self.seq:
                        continue  # a stale answer to an earlier try
                    answered = True
                    if f.kind == "ack":
                        self.seq = (self.seq + 1) & 0xFF
                        return
                    reason = Nack(f.reason).name if f.reason in iter(Nack) else f.reason
                    last = f"NACK {reason}"
            if not answered:
                last = "no answer"
        raise LinkError(
            f"frame seq {self.seq} not acknowledged after {self.retries + 1} tries ({last})"
        )

    def collect(self, count: int) -> None:
        deadline = time.monotonic() + self.timeout
        while len(self.results) < count:
            before = len(self.results)
            self._poll()
            if len(self.results) > before:
                deadline = time.monotonic() + self.timeout
            elif time.monotonic() > deadline:
                raise LinkError(
                    f"timed out waiting for results: {len(self.results)} of {count} words"
                )


class SerialTransport:
    """`host.runtime.Transport` over a serial port.

    Parameters
    ----------
    port : str              e.g. ``/dev/ttyUSB1`` (iCEBreaker: the second FTDI channel)
    config : AccelConfig    the configuration the board's bitstream was built with
    baud : int              serial rate of the bitstream (default `DEFAULT_BAUD`, 3 Mbaud,
                            as ``macforge build`` makes them; the build report says)
    max_words : int         command frame size the bitstream accepts (default 64)
    timeout : float         seconds to wait for an answer before retrying
    retries : int           resends of a frame before giving up
    open_port : callable    ``open_port(port, baud) -> object`` with ``read``/``write``/
                            ``close`` (default: ``serial.Serial``); tests pass a fake
    """

    def __init__(
        self,
        port: str,
        *,
        config: AccelConfig,
        baud: int = DEFAULT_BAUD,
        max_words: int = 64,
        timeout: float = 1.0,
        retries: int = 5,
        open_port: Callable[[str, int], Any] | None = None,
    ) -> None:
        if retries < 0 or timeout <= 0:
            raise ValueError("retries must be >= 0 and timeout > 0")
        self.port_name, self.config, self.baud = port, config, baud
        self.bus_bytes = config.bus_bytes
        self.max_words, self.timeout, self.retries = max_words, timeout, retries
        self._open_port = open_port or _open_pyserial
        self.retransmissions = 0

    def check_open(self) -> None:
        """Open and close the port once, so a port that cannot be opened fails (`LinkError`)
        before any work."""
        self._open_port(self.port_name, self.baud).close()

    def execute(self, segments: Sequence[Segment]) -> list[SegmentResult]:
        port = self._open_port(self.port_name, self.baud)
        try:
            s = _Session(port, self.bus_bytes, self.timeout, self.retries)
            s.send([])  # session reset: the bridge now expects seq 1
            for seg in segments:
                for chunk in split_words(list(seg.words), self.max_words):
                    s.send(chunk)
            total = sum(seg.results for seg in segments)
            s.collect(total)
            self.retransmissions += s.retransmissions
        finally:
            port.close()
        out, pos = [], 0
        for seg in segments:
            out.append(SegmentResult(results=s.results[pos : pos + seg.results], cycles=None))
            pos += seg.results
        return out


def _open_pyserial(port: str, baud: int):
    try:
        import serial  # pyserial
    except ImportError as exc:  # pragma: no cover - pyserial is a dependency
        raise LinkError("pyserial is not installed") from exc
    try:
        return serial.serial_for_url(port, baud, timeout=0.05)  # paths and URLs
    except (serial.SerialException, OSError) as exc:
        raise LinkError(f"cannot open serial port {port!r}: {exc}") from None
