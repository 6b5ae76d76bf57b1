"""fpga layer (see DESIGN.md)."""
