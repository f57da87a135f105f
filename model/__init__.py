"""voicegraph model layer: planner backends, ASR, TTS, audio, and offline model assets."""
