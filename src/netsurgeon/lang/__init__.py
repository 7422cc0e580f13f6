"""The language front-ends: the shared CNTK config layer (``config``), NDL, MEL and BrainScript."""
