"""ai_worker: ranked root-cause hypotheses, backed by evidence, for every new incident."""
