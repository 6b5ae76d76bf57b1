"""Bulk simulation: whole programs run with no Python in the per-cycle loop.

`harness_verilog` wraps the generated accelerator (module ``dut``) in a
Verilog testbench module that streams the command words from a file and the
results to files, all inside the simulator:

* Command words come from the file named by ``+words=`` (hex, one per line,
  read with ``$fscanf`` as they are taken, so a program may be any length);
  ``+n_words=`` and ``+n_results=`` give the counts, ``+seed=`` the random
  seed, ``+idle=`` / ``+stall=`` the idle and back-pressure probabilities in
  1/`PROB_ONE` units.
* Every cycle a 32-bit xorshift generator (seeded from ``+seed``) decides
  whether the next command word is held back one cycle (never two in a row,
  and never while a presented word waits: ``cmd.valid`` is held until
  ``cmd.ready``) and whether ``res.ready`` is low, so bulk runs exercise the
  handshakes like the per-cycle bench `sim.tb_accel` does.
* Each accepted word appends its cycle to ``+accept=``; each result word
  appends ``payload cycle`` (hex, decimal) to ``+results=``.
* It checks that something moves at least every `HANG_CYCLES` cycles while
  work remains (else ``hang``) and that no result word beyond ``n_results``
  appears, during the run or in the `TAIL_CYCLES` cycles after the last (else
  ``extra``, which ends the run at once, so every run terminates); then it
  writes the cycles simulated to ``+run=`` (`sim.bench_io.write_run`'s
  format) and raises ``done``.

The cocotb side (`sim.tb_bulk`) only starts the clock, releases reset and
waits for ``done``. Cycle 0 is the first cycle after reset, as in `sim.tb_accel`.
"""

from __future__ import annotations

__all__ = ["harness_verilog", "HARNESS_NAME", "HANG_CYCLES", "TAIL_CYCLES", "PROB_ONE"]

#: Module name of the harness (the simulation's top level).
HARNESS_NAME = "macforge_bulk"
#: Cycles without a word accepted or a result delivered that count as a hang.
HANG_CYCLES = 20000
#: Cycles after the last expected result during which none more may appear.
TAIL_CYCLES = 50
#: Probability 1.0 in the harness's fixed-point units.
PROB_ONE = 65536


def harness_verilog(dut: str, bus_bits: int, mutsel_bits: int = 0) -> str:
    """Verilog of the bulk harness around module ``dut`` (an `Accelerator`, `bus_bits` wide).

    ``mutsel_bits`` > 0: the design has a mutation selector input ``mutsel`` (Yosys
    ``mutate -ctrl``, `sim.mutants`), driven from the ``+mutsel=`` plusarg (0: none).
    """
    mutsel_decl = mutsel_conn = ""
    if mutsel_bits:
        mutsel_decl = (
            f"  reg [{mutsel_bits - 1}:0] mutsel;\n"
            '  initial if (!$value$plusargs("mutsel=%d", mutsel)) mutsel = 0;\n'
        )
        mutsel_conn = ", .mutsel(mutsel)"
    return f"""// macforge bulk-simulation harness (sim/bulk.py); generated, do not edit
module {HARNESS_NAME} (
  input wire clk /*verilator public_flat_rw*/,
  input wire rst /*verilator public_flat_rw*/,
  output reg done /*verilator public_flat_rd*/,
  output reg hang /*verilator public_flat_rd*/,
  output reg extra /*verilator public_flat_rd*/,
  output reg [31:0] cycle /*verilator public_flat_rd*/,
  output reg [31:0] wi /*verilator public_flat_rd*/,
  output reg [31:0] ri /*verilator public_flat_rd*/
);
  localparam W = {bus_bits};
  reg [8*1024-1:0] words_file, results_file, accept_file, run_file;
  integer words_fd, results_fd, accept_fd, run_fd, got;
  reg [W-1:0] word, next_word;
  reg [31:0] n_words, n_results, seed, idle_th, stall_th;
  reg [31:0] rnd, quiet, tail;
  reg idle_now, stall_now;
  wire cmd_valid = (wi < n_words) && !idle_now;
  wire cmd_ready;
  wire res_valid;
  wire res_ready = !stall_now || (ri >= n_results);
  wire [W-1:0] res_payload;
  wire err;
{mutsel_decl}  {dut} dut (
    .clk(clk), .rst(rst){mutsel_conn},
    .cmd__valid(cmd_valid), .cmd__ready(cmd_ready), .cmd__payload(word),
    .res__valid(res_valid), .res__ready(res_ready), .res__payload(res_payload),
    .error(err)
  );
  wire [31:0] x1 = rnd ^ (rnd << 13);
  wire [31:0] x2 = x1 ^ (x1 >> 17);
  wire [31:0] rnd_next = x2 ^ (x2 << 5);
  wire cmd_fire = cmd_valid && cmd_ready;
  wire res_fire = res_valid && res_ready;
  wire all_moved = (wi >= n_words) && (ri >= n_results);
  // an extra result ends the run at once (a design that never stops sending would
  // otherwise keep `quiet` at zero forever)
  wire finishing = !done && (extra || (all_moved ? tail == {TAIL_CYCLES} : quiet == {HANG_CYCLES}));
  initial begin
    if (!$value$plusargs("words=%s", words_file)) $fatal(1, "bulk harness: no +words=");
    if (!$value$plusargs("results=%s", results_file)) $fatal(1, "bulk harness: no +results=");
    if (!$value$plusargs("accept=%s", accept_file)) $fatal(1, "bulk harness: no +accept=");
    if (!$value$plusargs("run=%s", run_file)) $fatal(1, "bulk harness: no +run=");
    if (!$value$plusargs("n_words=%d", n_words)) n_words = 0;
    if (!$value$plusargs("n_results=%d", n_results)) n_results = 0;
    if (!$value$plusargs("seed=%d", seed)) seed = 1;
    if (!$value$plusargs("idle=%d", idle_th)) idle_th = 0;
    if (!$value$plusargs("stall=%d", stall_th)) stall_th = 0;
    words_fd = $fopen(words_file, "r");
    results_fd = $fopen(results_file, "w");
    accept_fd = $fopen(accept_file, "w");
    if (words_fd == 0 || results_fd == 0 || accept_fd == 0)
      $fatal(1, "bulk harness: cannot open files");
    word = 0;
    if (n_words > 0) got = $fscanf(words_fd, "%h\\n", word);
  end
  always @(posedge clk) begin
    if (rst) begin
      done <= 0; hang <= 0; extra <= 0; cycle <= 0; wi <= 0; ri <= 0;
      quiet <= 0; tail <= 0; idle_now <= 0; stall_now <= 0;
      rnd <= (seed == 0) ? 32'h1 : seed;
    end else if (finishing) begin
      done <= 1;
      hang <= !all_moved && !extra;
      $fclose(words_fd);
      $fclose(results_fd);
      $fclose(accept_fd);
      run_fd = $fopen(run_file, "w");
      $fwrite(run_fd, "{{\\"sim_cycles\\": %0d}}\\n", cycle);
      $fclose(run_fd);
    end else if (!done) begin
      cycle <= cycle + 1;
      rnd <= rnd_next;
      if (!cmd_valid || cmd_ready)
        idle_now <= (wi + (cmd_fire ? 1 : 0) < n_words) && !idle_now && (rnd[31:16] < idle_th);
      stall_now <= (rnd[15:0] < stall_th);
      if (cmd_fire) begin
        $fwrite(accept_fd, "%0d\\n", cycle);
        wi <= wi + 1;
        if (wi + 1 < n_words) begin
          got = $fscanf(words_fd, "%h\\n", next_word);
          word <= next_word;
        end
      end
      if (res_fire) begin
        if (ri < n_results) begin
          $fwrite(results_fd, "%h %0d\\n", res_payload, cycle);
          ri <= ri + 1;
        end else
          extra <= 1;
      end
      quiet <= (cmd_fire || res_fire) ? 0 : quiet + 1;
      tail <= all_moved ? tail + 1 : 0;
    end
  end
endmodule
"""
