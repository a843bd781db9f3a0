"""Run every benchmark with its default settings (those of docs/benchmarks.md)."""

from __future__ import annotations

from benchmarks import churn, emulator, pacing, service, startup, sync, transport

if __name__ == "__main__":
    pacing.main([])
    emulator.main([])
    transport.main([])
    sync.main([])
    churn.main([])
    startup.main([])
    service.main([])
