"""A quiet console for the command line: TensorFlow's start-up noise dropped, log lines that do
not tear progress bars. `--verbosity` (absl) restores the noise.

  console.setup(verbose=False)   # After flag parsing, before TensorFlow is imported.

What is dropped by default, and why:
  * TensorFlow's C++ start-up lines (`cudart_stub` "Could not find cuda drivers", printed once
    per loaded TF library, i.e. twice; the CPU-instructions banner; `failed call to cuInit` on a
    machine without a GPU): written to file descriptor 2 before TF's logging is initialised, so
    TF_CPP_MIN_LOG_LEVEL cannot hide them. They are captured while TensorFlow is imported and
    its devices listed; any other line from that window is passed through.
  * TF's C++ INFO and WARNING logs afterwards (XLA service start-up lines):
    TF_CPP_MIN_LOG_LEVEL=2 unless the environment sets it. Errors still show.
  * tf.function "retracing" warnings from Keras inference (`Model.predict` traces once per model
    and input batch shape; a study predicts with several models and split sizes, which is
    expected, not a bug): dropped by a filter on the `tensorflow` logger.
Log lines are written in tqdm's external-write mode, so they print above live progress bars
instead of through them.
"""

import contextlib
import logging
import os
import sys
import tempfile
import threading
import time

_NOISE = ("All log messages before absl::InitializeLog", "cudart_stub.cc", "cpu_feature_guard.cc",
          "To enable the following instructions", "cuInit", "cuda_platform.cc",
          "Unable to register cu", "computation placer already registered", "oneDNN custom",
          "TF_ENABLE_ONEDNN_OPTS", "Could not find cuda drivers", "cuda_executor.cc")
_done = False
_last_output = 0.0  # time.monotonic() of the last log line (set by the quiet console's handler).


class _NoRetracingWarnings(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    return "triggered tf.function retracing" not in record.getMessage()


def import_tensorflow_quietly() -> None:
  """Imports TensorFlow and Keras and lists the devices with fd 2 captured; lines that are not
  known start-up noise are written back to stderr."""
  if "tensorflow" in sys.modules:
    return
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      import keras  # pylint: disable=import-outside-toplevel,unused-import
      tf.config.list_physical_devices()  # cuInit happens here.
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      for line in captured.read().decode("utf-8", "replace").splitlines():
        if line.strip() and not any(n in line for n in _NOISE):
          sys.stderr.write(line + "\n")


def setup(verbose: bool) -> None:
  """The quiet console (once per process); with `verbose`, only the tqdm-safe log stream."""
  global _done  # pylint: disable=global-statement
  if _done:
    return
  _done = True
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  import tqdm  # pylint: disable=import-outside-toplevel
  handler = absl_logging.get_absl_handler()
  emit = handler.emit

  def emit_above_bars(record):  # Clears live bars, logs, redraws them.
    global _last_output  # pylint: disable=global-statement
    _last_output = time.monotonic()
    with tqdm.tqdm.external_write_mode(file=sys.stderr):
      emit(record)
  handler.emit = emit_above_bars
  if verbose:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  logging.getLogger("tensorflow").addFilter(_NoRetracingWarnings())
  import_tensorflow_quietly()


@contextlib.contextmanager
def heartbeat(label: str, every: float = 15.0):
  """While the block runs (on the command line, after `setup`), logs "<label>: still working"
  whenever `every` seconds pass with no log line and no live progress bar, so no phase is silent
  for long."""
  if not _done:
    yield
    return
  import tqdm  # pylint: disable=import-outside-toplevel
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  start, stop = time.monotonic(), threading.Event()

  def beat():
    last = start
    while not stop.wait(every / 3):
      now = time.monotonic()
      if len(getattr(tqdm.tqdm, "_instances", ())):
        last = now  # A live bar shows progress; count the silence from when it ends.
      elif now - max(_last_output, last) >= every:
        absl_logging.info("%s: still working (%.0f s)", label, now - start)
        last = now

  thread = threading.Thread(target=beat, daemon=True)
  thread.start()
  try:
    yield
  finally:
    stop.set()
    thread.join()
