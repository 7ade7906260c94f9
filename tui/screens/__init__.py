"""The workstation's screens: one module per mode, plus modals (help, debug info, confirmations)."""
