"""voicegraph faces: settings, composition root, HTTP and CLI."""
