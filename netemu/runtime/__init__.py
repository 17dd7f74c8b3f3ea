"""One runtime for simulated and live runs: clocks, the event core, the round driver, results."""
