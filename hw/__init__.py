"""macforge hardware generator (Amaranth HDL). Imports amaranth only."""
