"""Verification: golden models (the spec), packing helpers, simulator runner, cocotb benches."""
