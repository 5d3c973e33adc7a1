"""Backend of the FIR desk demo: FastAPI + OpenTelemetry Python, the stack
tracelink's browser spans join. Entry point: `python -m demo.backend`."""
