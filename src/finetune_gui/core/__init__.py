"""The engine: pure Python and TensorFlow, no Qt. The GUI, the CLI and the Python API all call it."""
