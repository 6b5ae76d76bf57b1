"""The file and environment contract between a transport (or test) and a cocotb bench.

A bench runs in the simulator's own Python process, so everything it needs comes
through environment variables and files in one folder (``MACFORGE_IO``). Both
sides import this module: the names below and the readers/writers are defined
here only.

``tb_accel`` (`SimTransport`)::

    words.bin       every command word, ``bus_bytes`` little-endian bytes each
    segments.json   per segment: {"words", "results", "measure": [first word, results] | null}
    results.bin     every result word, same encoding
    results.json    per segment: {"results", "cycles": measured span | null}
    run.json        {"sim_cycles": clock cycles simulated after reset}

``tb_bulk`` (`SimTransport` in bulk mode, the harness of `sim.bulk`)::

    words.hex       every command word, hex, one per line
    results.txt     per result word: hex payload, the cycle it was delivered
    accept.txt      per command word: the cycle it was accepted
    run.json        as above

``tb_soc`` (UART board top): ``script.json`` in, ``out.json`` back (see `sim.tb_soc`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from macforge.host.runtime import Segment, SegmentResult

__all__ = [
    "ENV_CONFIG",
    "ENV_IO",
    "ENV_TEST_SEED",
    "ENV_IDLE_PROB",
    "ENV_STALL_PROB",
    "ENV_CLK_PS",
    "ENV_BAUD",
    "ENV_BUS_BYTES",
    "words_to_bytes",
    "bytes_to_words",
    "write_segments",
    "read_segments",
    "write_results",
    "read_results",
    "segment_meta",
    "measure_marks",
    "split_results",
    "write_hex",
    "read_numbers",
    "read_result_lines",
    "write_run",
    "read_run",
    "WORDS_HEX",
    "RESULTS_HEX",
    "ACCEPT_HEX",
    "RUN",
]

ENV_CONFIG = "MACFORGE_CONFIG"  #: `AccelConfig` JSON of the model under test
ENV_IO = "MACFORGE_IO"  #: folder of the files below
ENV_TEST_SEED = "MACFORGE_TEST_SEED"  #: the bench's random seed
ENV_IDLE_PROB = "MACFORGE_IDLE_PROB"  #: chance of an idle cycle before a command word
ENV_STALL_PROB = "MACFORGE_STALL_PROB"  #: chance of ``res.ready`` low in a cycle
ENV_CLK_PS = "MACFORGE_CLK_PS"  #: clock period of the board-top bench (ps)
ENV_BAUD = "MACFORGE_BAUD"  #: serial rate of the board-top bench
ENV_BUS_BYTES = "MACFORGE_BUS_BYTES"  #: stream word width of the board-top bench

WORDS, SEGMENTS, RESULTS, RESULTS_META = "words.bin", "segments.json", "results.bin", "results.json"
WORDS_HEX, RESULTS_HEX, ACCEPT_HEX = "words.hex", "results.txt", "accept.txt"
RUN = "run.json"


def words_to_bytes(words: Sequence[int], bus_bytes: int) -> bytes:
    """Words as ``bus_bytes`` little-endian bytes each."""
    return b"".join(int(w).to_bytes(bus_bytes, "little") for w in words)


def bytes_to_words(blob: bytes, bus_bytes: int) -> list[int]:
    """Inverse of `words_to_bytes`."""
    step = bus_bytes
    return [int.from_bytes(blob[i : i + step], "little") for i in range(0, len(blob), step)]


def segment_meta(segments: Sequence[Segment]) -> list[dict]:
    """Per segment {"words", "results", "measure"} (what ``segments.json`` holds)."""
    return [
        {
            "words": len(seg.words),
            "results": seg.results,
            "measure": list(seg.measure) if seg.measure else None,
        }
        for seg in segments
    ]


def measure_marks(meta: Sequence[dict]) -> list[tuple[int, int] | None]:
    """Per segment, the absolute (word index, result index) whose accept and delivery
    cycles bound its measured span, or None."""
    marks: list[tuple[int, int] | None] = []
    w0 = r0 = 0
    for seg in meta:
        if seg["measure"]:
            first_word, n_res = seg["measure"]
            marks.append((w0 + first_word, r0 + n_res - 1))
        else:
            marks.append(None)
        w0 += seg["words"]
        r0 += seg["results"]
    return marks


def split_results(
    meta: Sequence[dict], results: Sequence[int], accept: dict[int, int], deliver: dict[int, int]
) -> list[SegmentResult]:
    """Result words split per segment, each with its measured span in cycles
    (``deliver[last result] - accept[first word] + 1``) where it has one."""
    out, pos = [], 0
    for seg, mark in zip(meta, measure_marks(meta), strict=True):
        cycles = deliver[mark[1]] - accept[mark[0]] + 1 if mark else None
        out.append(SegmentResult(results=list(results[pos : pos + seg["results"]]), cycles=cycles))
        pos += seg["results"]
    return out


def write_segments(io: Path, segments: Sequence[Segment], bus_bytes: int) -> None:
    """Transport side: the command words and per-segment metadata for ``tb_accel``."""
    words = [w for seg in segments for w in seg.words]
    (io / WORDS).write_bytes(words_to_bytes(words, bus_bytes))
    (io / SEGMENTS).write_text(json.dumps(segment_meta(segments)))


def write_hex(path: Path, words: Sequence[int]) -> None:
    """Words as hex text, one per line (the bulk harness reads them with ``$fscanf``)."""
    path.write_text("".join(f"{int(w):x}\n" for w in words))


def read_numbers(path: Path) -> list[int]:
    """Decimal numbers, one per line (the harness's accept stamps)."""
    return [int(line) for line in path.read_text().split()]


def read_result_lines(path: Path) -> tuple[list[int], list[int]]:
    """(result words, delivery cycles) of the harness's ``payload cycle`` lines."""
    fields = path.read_text().split()
    return [int(w, 16) for w in fields[0::2]], [int(c) for c in fields[1::2]]


def write_run(io: Path, sim_cycles: int) -> None:
    """Bench side: how many clock cycles the run simulated."""
    (io / RUN).write_text(json.dumps({"sim_cycles": sim_cycles}))


def read_run(io: Path) -> dict:
    """Transport side: what `write_run` wrote."""
    return json.loads((io / RUN).read_text())


def read_segments(io: Path, bus_bytes: int) -> tuple[list[int], list[dict]]:
    """Bench side: (all command words, per-segment metadata) as `write_segments` wrote them."""
    words = bytes_to_words((io / WORDS).read_bytes(), bus_bytes)
    return words, json.loads((io / SEGMENTS).read_text())


def write_results(io: Path, results: Sequence[int], meta: list[dict], bus_bytes: int) -> None:
    """Bench side: every result word, and per segment {"results", "cycles"}."""
    (io / RESULTS_META).write_text(json.dumps(meta))
    (io / RESULTS).write_bytes(words_to_bytes(results, bus_bytes))


def read_results(io: Path, bus_bytes: int) -> list[SegmentResult]:
    """Transport side: the bench's results split per segment."""
    meta = json.loads((io / RESULTS_META).read_text())
    words = bytes_to_words((io / RESULTS).read_bytes(), bus_bytes)
    out, pos = [], 0
    for seg in meta:
        out.append(SegmentResult(results=words[pos : pos + seg["results"]], cycles=seg["cycles"]))
        pos += seg["results"]
    return out
