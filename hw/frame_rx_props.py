"""Formal properties of the serial link's receiver (`hw.frame_rx.FrameReceiver`), issue 10:
a frame with a bad CRC or a wrong sequence number never reaches the accelerator, and no
frame runs twice.

The harness parses the byte stream on ``rx`` itself (free bytes at free cycles; the UART
receiver is always ready), from the frame format of `hw.bridge` and the constants of
`hw.link_protocol` — written here independently of the receiver: ``0xA5 seq len_lo
len_hi payload crc_lo crc_hi``, CRC-16/CCITT-FALSE (`hw.frame_tx.crc16_step` on the
harness's own register) over ``seq``, ``len`` and the payload, words little-endian. It
classifies every frame as the protocol says: ``len`` above ``max_words`` (NACK
LENGTH), bad CRC (NACK CRC), ``len`` = 0 (session reset: the next expected ``seq`` is
``seq + 1``; ACK), ``seq`` the expected one (the frame runs: its words go to the
accelerator, then ACK; the next expected is ``seq + 1``), ``seq`` the previous one (a
retransmission: ACK, nothing runs), any other ``seq`` (NACK SEQUENCE), or the frame
stops arriving (NACK TIMEOUT: ``timeout`` cycles without a byte and none on the next
either). The device expects ``seq`` 0 after reset. After a frame's end the receiver
takes no byte until its reply has been sent (``reply.done`` with ``reply.req``); then
it hunts for the next 0xA5 (so a refused frame's rest may hold the next sync byte).

``frame_rx.only_checked_frames_run``
    every word offered on ``cmd`` is the next undelivered word of the last frame the
    harness found to run (good CRC, expected ``seq``), in order; each such word is
    offered until taken and then never again; no word of any other frame (bad CRC,
    wrong or repeated ``seq``, bad length, truncated) is ever offered; and a run
    frame's ACK is requested only after its last word was taken. Broken variant: a
    retransmission (``seq`` the previous one) is taken for the expected frame, so it
    runs again — the counterexample: right after reset a one-word frame with ``seq``
    255 offers its word (cycle 11).
``frame_rx.replies_match_frames``
    every reply request (``reply.req``) comes after a frame's end, before the next
    frame, with the kind and reason of the harness's classification above and the
    frame's ``seq`` (when its ``seq`` byte arrived) — in particular a retransmitted
    frame with the previous ``seq`` is ACKed (and, by the first property, does not
    run), also across the wrap (``seq`` 255 while 0 is expected). Broken variant:
    only the high CRC byte is compared (the low byte's compare is ignored), so a frame
    with a bad low CRC byte is ACKed — the counterexample: a ``len`` 0 frame (cycle 6).

How they are proved: k-induction (SymbiYosys ``prove``), `PROVE_DEPTH` = 3 cycles. The
harness's parser and the receiver are related only through the byte stream, so on its
own the property is not inductive (from an arbitrary state the two can be out of step,
e.g. hold different expected ``seq`` values). `FrameRxHarness._lemmas` close that gap:
assertions that map the parser's state onto the receiver's *internal registers* —
state, running CRC, expected ``seq``, the registered compares (``seq_is_next``,
``seq_is_repeat`` with the wrapping ``expected - 1``, ``crc_lo_ok``, ``len_zero``,
``last_word``, ``at_timeout``, ``issue_more``), the counters (``idle``, byte and word
index, ``issue_left``, the frame buffer's read address), the partial word and the
frame buffer's contents. They are asserted, not assumed, so they are proved along with
the property (base case and induction) and cannot hide a bug. They read the registers
through `_Observed`, a subclass of `FrameReceiver` that copies the ``r`` namespace of
its ``_receive`` and ``_execute`` (names in `_VIEW_WIDTHS`), so they depend on its
implementation: a refactoring of the receiver (renamed or re-encoded registers, a
compare registered a cycle earlier or later, a changed state encoding, `_receive` /
`_execute` split differently) needs the lemmas (and `_Observed`) updated, while the
properties, stated on the ports, stay. (The receiver before commit 9ace6b3, which
compared ``seq`` with an unwrapped ``expected - 1``, fails the ``seq_is_repeat``
lemma's induction, and it NACKs SEQUENCE a ``seq`` 255 frame while 0 is expected,
against the reply property.)

The covers and the broken variants: the receiver is built small — ``max_words`` =
`MAX_WORDS` (2), ``timeout`` = `TIMEOUT` (2) — and every cover needs only one frame
from reset, so `COVER_DEPTH` (19 cycles; also the broken variants' BMC depth, see
`sim.formal`) stays small: a two-word frame is 14 bytes (``bus_bytes`` 4), offered on
cycles 15 and 16 and ACKed on cycle 18, the deepest cover (18 cycles do not reach it).
The others: a frame with words and a bad CRC NACKed, a retransmission with words
(``seq`` 255 right after reset) ACKed without running, and — for the reply property —
NACK LENGTH, SEQUENCE and TIMEOUT. The broken jobs run without the lemmas, so the
property statements alone reject the bugs.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Assert, Cat, Cover, Module, Mux, Signal

from . import frame_rx as rx_states
from .config import AccelConfig
from .formal import FormalCheck
from .frame_rx import FrameReceiver
from .frame_tx import crc16_step
from .link_protocol import CRC_INIT, SYNC_HOST, FrameType, Nack
from .stream_props import StreamHarness

__all__ = ["MAX_WORDS", "TIMEOUT", "PROVE_DEPTH", "COVER_DEPTH", "FrameRxHarness", "formal_checks"]

#: Frame buffer depth of the receiver under test (``len`` 3 and up is NACKed LENGTH).
MAX_WORDS = 2
#: Inter-byte timeout of the receiver under test, cycles.
TIMEOUT = 2
#: k-induction length of both properties (with the lemmas).
PROVE_DEPTH = 3
#: Cover search depth, and the broken variants' BMC depth (see the module docstring).
COVER_DEPTH = 19

#: The harness parser's states.
P_HUNT, P_SEQ, P_LEN0, P_LEN1, P_DATA, P_CRC0, P_CRC1, P_WAIT = range(8)


class _Observed(FrameReceiver):
    """The receiver, with its registers copied to ``view`` (same names; ``mem``: the
    frame buffer's words, ``issued``: the read address) for the harness's lemmas."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        nb, mw = self.bus_bytes, self.max_words
        widths = dict(_VIEW_WIDTHS, word=8 * nb)
        self.view = SimpleNamespace(
            **{k: Signal(w, name=f"rx_{k}") for k, w in widths.items()},
            issued=Signal(range(mw), name="rx_read_addr"),  # the words read, mod depth
            mem=[Signal(8 * nb, name=f"rx_mem{i}") for i in range(mw)],
        )

    def _receive(self, m, r, wr):
        super()._receive(m, r, wr)
        v = self.view
        m.d.comb += [getattr(v, k).eq(getattr(r, k)) for k in _VIEW_WIDTHS]
        m.d.comb += v.word.eq(r.word)
        for i, word in enumerate(v.mem):
            port = wr.memory.read_port(domain="comb")
            m.d.comb += [port.addr.eq(i), word.eq(port.data)]

    def _execute(self, m, r, rd):
        super()._execute(m, r, rd)
        m.d.comb += self.view.issued.eq(rd.addr)


#: The receiver's registers the lemmas name, and widths that hold them.
_VIEW_WIDTHS = {
    "state": 4,
    "expected": 8,
    "seq_is_next": 1,
    "seq_is_repeat": 1,
    "len_lo": 8,
    "length": 16,
    "crc": 16,
    "crc_lo_ok": 1,
    "len_zero": 1,
    "at_timeout": 1,
    "issue_more": 1,
    "issue_left": 16,
    "last_word": 1,
    "byte_idx": 8,
    "word_idx": 8,
    "idle": 16,
}


class _RepeatRuns(_Observed):
    """Broken receiver: a retransmission (``seq`` the previous one) is taken for the
    expected frame, so it runs again."""

    def _receive(self, m, r, wr):
        super()._receive(m, r, wr)
        seq = self.reply.seq
        again = seq == (r.expected - 1)[:8]
        m.d.sync += r.seq_is_next.eq((seq == r.expected) | again)  # the last assignment wins


class _CrcLowByteIgnored(_Observed):
    """Broken receiver: the first CRC byte's compare is ignored."""

    def _receive(self, m, r, wr):
        super()._receive(m, r, wr)
        m.d.sync += r.crc_lo_ok.eq(1)  # the last assignment wins


class _Parser:
    """The link's frames as the protocol defines them, from the bytes on ``rx``.

    ``state``: where the byte stream is (``P_WAIT``: a frame ended, its reply not yet
    sent, bytes are dropped); ``seq``, ``length``, ``crc``, ``expected``, ``words``:
    the frame's, as parsed; at a frame's end the verdict: ``v_kind``, ``v_reason``,
    ``v_seq_known`` (its ``seq`` byte arrived), ``v_runs`` (it runs); ``runs``: the
    frame in hand runs, ``done_words`` of its words were taken, ``pending`` are left,
    the next is ``next_word``."""

    def __init__(self, m: Module, h, nb: int, max_words: int, timeout: int) -> None:
        rx, rp = h.rx, h.reply
        self.state = state = Signal(range(8), name="p_state")
        self.seq = seq = Signal(8, name="p_seq")
        seq_known = Signal(name="p_seq_known")
        self.length = length = Signal(16, name="p_len")
        self.crc = crc = Signal(16, init=CRC_INIT, name="p_crc")
        self.crc_lo = crc_lo = Signal(8, name="p_crc_lo")
        self.expected = expected = Signal(8, name="p_expected")  # 0 after reset
        self.words = words = [Signal(8 * nb, name=f"p_word{i}") for i in range(max_words)]
        self.widx = widx = Signal(range(max_words + 1), name="p_widx")
        self.bidx = bidx = Signal(range(nb), name="p_bidx")
        self.silent = silent = Signal(range(timeout + 1), name="p_silent")
        self.done_words = done = Signal(range(max_words + 1), name="p_done_words")
        self.v_kind = Signal(2, name="v_kind")
        self.v_reason = Signal(8, name="v_reason")
        self.v_seq_known = Signal(name="v_seq_known")
        self.v_runs = Signal(name="v_runs")

        byte = rx.payload
        take = rx.valid & (state != P_WAIT)
        self.in_frame = in_frame = (state != P_HUNT) & (state != P_WAIT)
        next_crc = Signal(16, name="p_next_crc")
        m.d.comb += next_crc.eq(crc16_step(crc, byte))
        self.reply_sent = rp.req & rp.done
        self.runs = (state == P_WAIT) & self.v_runs
        self.pending = Mux(self.runs, length - done, 0)
        self.next_word = Array(words)[done]

        def end(kind, reason=0, runs=False):
            return [
                state.eq(P_WAIT),
                self.v_kind.eq(kind),
                self.v_reason.eq(reason),
                self.v_seq_known.eq(seq_known),
                self.v_runs.eq(runs),
            ]

        with m.If(in_frame & ~rx.valid):
            with m.If(silent == timeout):
                m.d.sync += end(FrameType.NACK, Nack.TIMEOUT)
            with m.Else():
                m.d.sync += silent.eq(silent + 1)
        with m.Else():
            m.d.sync += silent.eq(0)

        with m.Switch(state):
            with m.Case(P_HUNT):
                with m.If(take & (byte == SYNC_HOST)):
                    m.d.sync += [state.eq(P_SEQ), crc.eq(CRC_INIT), seq_known.eq(0)]
            with m.Case(P_SEQ):
                with m.If(take):
                    m.d.sync += [seq.eq(byte), seq_known.eq(1), crc.eq(next_crc)]
                    m.d.sync += [state.eq(P_LEN0), length.eq(0)]
            with m.Case(P_LEN0):
                with m.If(take):
                    m.d.sync += [length[:8].eq(byte), crc.eq(next_crc), state.eq(P_LEN1)]
            with m.Case(P_LEN1):
                with m.If(take):
                    full = Cat(length[:8], byte)
                    m.d.sync += [length.eq(full), crc.eq(next_crc), widx.eq(0), bidx.eq(0)]
                    with m.If(full > max_words):
                        m.d.sync += end(FrameType.NACK, Nack.LENGTH)
                    with m.Elif(full == 0):
                        m.d.sync += state.eq(P_CRC0)
                    with m.Else():
                        m.d.sync += state.eq(P_DATA)
            with m.Case(P_DATA):
                with m.If(take):
                    m.d.sync += crc.eq(next_crc)
                    for w in range(max_words):
                        for b in range(nb):
                            with m.If((widx == w) & (bidx == b)):
                                m.d.sync += words[w][8 * b : 8 * b + 8].eq(byte)
                    with m.If(bidx == nb - 1):
                        m.d.sync += [bidx.eq(0), widx.eq(widx + 1)]
                        with m.If(widx + 1 == length):
                            m.d.sync += state.eq(P_CRC0)
                    with m.Else():
                        m.d.sync += bidx.eq(bidx + 1)
            with m.Case(P_CRC0):
                with m.If(take):
                    m.d.sync += [crc_lo.eq(byte), state.eq(P_CRC1)]
            with m.Case(P_CRC1):
                with m.If(take):
                    with m.If((crc_lo != crc[:8]) | (byte != crc[8:])):
                        m.d.sync += end(FrameType.NACK, Nack.CRC)
                    with m.Elif(length == 0):
                        m.d.sync += [expected.eq(seq + 1)] + end(FrameType.ACK)
                    with m.Elif(seq == expected):
                        m.d.sync += [expected.eq(seq + 1), done.eq(0)]
                        m.d.sync += end(FrameType.ACK, runs=True)
                    with m.Elif(seq == (expected - 1)[:8]):
                        m.d.sync += end(FrameType.ACK)
                    with m.Else():
                        m.d.sync += end(FrameType.NACK, Nack.SEQUENCE)
            with m.Case(P_WAIT):
                with m.If(self.reply_sent):
                    m.d.sync += state.eq(P_HUNT)

        # the running frame's words leave in order, once each
        self.taken = h.cmd.valid & h.cmd.ready
        with m.If(self.taken & (self.pending != 0)):
            m.d.sync += done.eq(done + 1)


class FrameRxHarness(StreamHarness):
    """The receiver with free inputs (see `StreamHarness`: ``cmd`` is asserted to hold
    its word until taken), the protocol's own parse of ``rx`` and one property
    (``prop``: ``run`` or ``reply``).

    Lemmas (`_lemmas`, asserted, so proved as well) make the property inductive: they
    map the harness's parse onto the receiver's internal registers (read through
    `_Observed`). They are the only look inside the receiver; being asserted, not
    assumed, they cannot hide a bug, but they fix how the receiver holds its state, so
    they need updating when it is refactored. The broken variants are checked without
    them, so the property itself rejects the bugs."""

    def __init__(self, config: AccelConfig, prop: str, broken: bool = False) -> None:
        self.config, self.prop, self.broken_variant = config, prop, broken
        cls = _Observed
        if broken:
            cls = _RepeatRuns if prop == "run" else _CrcLowByteIgnored
        dut = cls(bus_bytes=config.bus_bytes, max_words=MAX_WORDS, timeout=TIMEOUT)
        super().__init__(dut, covers=False)

    def elaborate(self, platform):
        m = super().elaborate(platform)
        p = _Parser(m, self, self.config.bus_bytes, MAX_WORDS, TIMEOUT)
        if not self.broken_variant:
            self._lemmas(m, p)
        if self.prop == "run":
            self._run(m, p)
        else:
            self._reply(m, p)
        self._covers(m, p)
        return m

    def _run(self, m, p):
        cmd, rp = self.cmd, self.reply
        with m.If(cmd.valid):
            m.d.comb += [
                Assert(p.pending != 0, "a word no frame that runs still holds is offered"),
                Assert(cmd.payload == p.next_word, "the word offered is not the frame's next"),
            ]
        with m.If(rp.req & p.runs):
            m.d.comb += Assert(p.pending == 0, "ACK asked for before the frame's last word")

    def _reply(self, m, p):
        rp = self.reply
        with m.If(rp.req):
            m.d.comb += [
                Assert(p.state == P_WAIT, "reply asked for outside a frame's end"),
                Assert(rp.kind == p.v_kind, "reply kind differs from the frame's"),
                Assert(rp.reason == p.v_reason, "NACK reason differs from the frame's"),
            ]
            with m.If(p.v_seq_known):
                m.d.comb += Assert(rp.seq == p.seq, "reply seq differs from the frame's")

    def _lemmas(self, m, p):
        """The harness's parse as the receiver's registers hold it."""
        v, rp, cmd = self.dut.view, self.reply, self.cmd
        nb, mw = self.config.bus_bytes, MAX_WORDS

        def lemma(cond, text):
            m.d.comb += Assert(cond, f"lemma: {text}")

        mapped = {
            P_HUNT: rx_states.HUNT,
            P_SEQ: rx_states.SEQ,
            P_LEN0: rx_states.LEN0,
            P_LEN1: rx_states.LEN1,
            P_DATA: rx_states.DATA,
            P_CRC0: rx_states.CRC0,
            P_CRC1: rx_states.CRC1,
        }
        in_exec = v.state == rx_states.EXEC
        for ps, rs in mapped.items():
            with m.If(p.state == ps):
                lemma(v.state == rs, "receiver state")
                lemma(~cmd.valid & (v.issued == 0), "no word out while receiving")
        with m.If(p.state == P_WAIT):
            lemma((in_exec & p.v_runs) | (v.state == rx_states.REPLY), "receiver state")
        lemma(p.state < 8, "harness state")
        lemma(rp.req == (v.state == rx_states.REPLY), "reply request")
        lemma(v.crc == p.crc, "CRC")
        lemma(v.expected == p.expected, "expected seq")
        lemma(rp.seq == p.seq, "seq")
        lemma(p.silent <= TIMEOUT, "silent cycles")
        with m.If(p.in_frame):
            lemma(v.idle == p.silent, "idle cycles")
            lemma(v.at_timeout == (p.silent == TIMEOUT), "timeout flag")
        with m.If(p.state == P_HUNT):
            lemma((v.idle == 0) & ~v.at_timeout, "idle cycles")
        with m.If(p.state == P_LEN1):
            lemma(v.len_lo == p.length[:8], "len_lo")
        checked = (p.state == P_LEN1) | (p.state == P_DATA)
        checked |= (p.state == P_CRC0) | (p.state == P_CRC1)
        with m.If(checked):
            lemma(v.seq_is_next == (p.seq == p.expected), "seq_is_next")
            lemma(v.seq_is_repeat == (p.seq == (p.expected - 1)[:8]), "seq_is_repeat")
        body = (p.state == P_DATA) | (p.state == P_CRC0) | (p.state == P_CRC1)
        with m.If(body):
            lemma(p.length <= mw, "length fits")
            lemma(v.length == p.length, "length")
            lemma(v.len_zero == (p.length == 0), "len_zero")
            lemma(v.issue_left == p.length, "issue_left")
            lemma(v.issue_more == (p.length != 0), "issue_more")
        with m.If(p.state == P_CRC1):
            lemma(v.crc_lo_ok == (p.crc_lo == p.crc[:8]), "crc_lo_ok")
        with m.If(p.state == P_DATA):
            lemma((p.length != 0) & (p.widx < p.length), "word index in range")
            lemma((v.word_idx == p.widx) & (v.byte_idx == p.bidx), "byte position")
            lemma(v.last_word == (p.widx + 1 == p.length), "last_word")
            current = Array(p.words)[p.widx]
            for b in range(1, nb):
                with m.If(p.bidx == b):
                    lemma(v.word[8 * (nb - b) :] == current[: 8 * b], "word so far")
            for i in range(mw):
                with m.If(i < p.widx):
                    lemma(v.mem[i] == p.words[i], "frame buffer")
        stored = (p.state == P_CRC0) | (p.state == P_CRC1) | p.runs
        for i in range(mw):
            with m.If(stored & (i < p.length)):
                lemma(v.mem[i] == p.words[i], "frame buffer")
        with m.If(p.runs):
            lemma((p.v_kind == FrameType.ACK) & (p.v_reason == 0), "a frame that runs is ACKed")
            lemma((p.length != 0) & (p.length <= mw), "length fits")
            lemma(p.done_words <= p.length, "words taken")
            lemma(v.length == p.length, "length")
        with m.If(in_exec):
            read = p.done_words + cmd.valid  # words read from the frame buffer
            lemma(v.issued == read[: len(v.issued)], "read address")
            lemma(v.issue_left == p.length - read, "issue_left")
            lemma(v.issue_more == (v.issue_left != 0), "issue_more")
        with m.If(v.state == rx_states.REPLY):
            lemma(~cmd.valid & (v.issued == 0), "no word out while replying")

    def _covers(self, m, p):
        """Stated on the receiver's outputs (reply sent, its kind and reason; words taken)
        and the frame's length; each needs one frame from reset (see the module docstring
        for the cycles)."""
        rp = self.reply
        sent = rp.req & rp.done
        taken = Signal(range(MAX_WORDS + 1), name="cov_taken")  # words taken since the last reply
        with m.If(sent):
            m.d.sync += taken.eq(0)
        with m.Elif(p.taken & (taken != MAX_WORDS)):
            m.d.sync += taken.eq(taken + 1)
        ack = sent & (rp.kind == FrameType.ACK)
        nack = sent & (rp.kind == FrameType.NACK)
        words = p.length != 0
        # a frame of MAX_WORDS words runs, its words taken, then ACKed
        m.d.comb += Cover(ack & (taken == MAX_WORDS))
        # a frame with words and a bad CRC is refused
        m.d.comb += Cover(nack & (rp.reason == Nack.CRC) & words)
        # a retransmission (words, the previous seq: 255 right after reset) is ACKed, and
        # nothing runs
        m.d.comb += Cover(ack & (taken == 0) & words)
        if self.prop == "reply":
            for reason in (Nack.LENGTH, Nack.SEQUENCE, Nack.TIMEOUT):
                m.d.comb += Cover(nack & (rp.reason == reason))


def formal_checks(config: AccelConfig) -> list[FormalCheck]:
    """The receiver's issue-10 properties for ``config``'s bus width."""
    return [
        FormalCheck(
            name="frame_rx.only_checked_frames_run",
            module="hw/frame_rx.py",
            statement="every word on cmd is, in order and once, a word of a frame with a good "
            "CRC and the expected seq (a repeated, corrupt, overlong or truncated frame never "
            "runs); its ACK only after its last word",
            mode="prove",
            depth=PROVE_DEPTH,
            harness=lambda broken: FrameRxHarness(config, "run", broken),
            broken="a retransmission (the previous seq) is taken for the expected frame, "
            "so it runs again",
            cover_depth=COVER_DEPTH,
        ),
        FormalCheck(
            name="frame_rx.replies_match_frames",
            module="hw/frame_rx.py",
            statement="every reply follows a frame's end with the protocol's kind, reason and "
            "the frame's seq (a retransmission with the previous seq is ACKed)",
            mode="prove",
            depth=PROVE_DEPTH,
            harness=lambda broken: FrameRxHarness(config, "reply", broken),
            broken="only the high CRC byte is compared, so a bad low CRC byte is ACKed",
            cover_depth=COVER_DEPTH,
        ),
    ]
