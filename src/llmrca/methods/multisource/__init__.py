"""Multi-source methods over metrics, logs and traces: MM-BARO, PDiagnose."""
