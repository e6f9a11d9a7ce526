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

Progress (`console.progress`, used for every bar): on a terminal a tqdm bar as usual; when stderr
is not a terminal (CI logs, `> log 2>&1`) no `\\r`-redrawn bar but a plain log line
"<desc>: N/TOTAL (P%) [elapsed<remaining, rate]" every `interval()` seconds (15 s; the
environment variable TFHULL_PROGRESS_SECONDS sets it), nothing for a phase shorter than that.
The heartbeat (`console.heartbeat`) uses the same interval; output from Keras training
(`touch`, called per epoch) counts as progress.
"""

import contextlib
import logging
import os
import sys
import tempfile
import threading
import time
from typing import Optional

_NOISE = ("All log messages before absl::InitializeLog", "cudart_stub.cc", "cpu_feature_guard.cc",
          "To enable the following instructions", "cuInit", "cuda_platform.cc",
          "Unable to register cu", "computation placer already registered", "oneDNN custom",
          "TF_ENABLE_ONEDNN_OPTS", "Could not find cuda drivers", "cuda_executor.cc")
_done = False
_last_output = 0.0  # time.monotonic() of the last output (log line, Keras epoch line, `touch`).
INTERVAL_ENV = "TFHULL_PROGRESS_SECONDS"


def interval() -> float:
  """Seconds between progress lines without a terminal, and of silence before a heartbeat."""
  try:
    return max(0.05, float(os.environ.get(INTERVAL_ENV, "15")))
  except ValueError:
    return 15.0


def touch() -> None:
  """Marks output just now (e.g. Keras printed an epoch line): the heartbeat counts from here."""
  global _last_output  # pylint: disable=global-statement
  _last_output = time.monotonic()


def on_terminal() -> bool:
  """Whether stderr is a terminal (or a notebook, which draws bars itself): bars are drawn."""
  try:
    return sys.stderr.isatty() or "ipykernel" in sys.modules
  except (AttributeError, ValueError):
    return False


class _LogLines:
  """A file for tqdm without a terminal: each redraw becomes one log line, no `\\r`."""

  def write(self, s: str) -> None:
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
    text = s.replace("\r", "").replace("\x1b[A", "").strip()
    if text:
      absl_logging.info("%s", text)

  def flush(self) -> None:
    pass


def progress(iterable=None, **kwargs):
  """A progress bar: `tqdm.tqdm(iterable, **kwargs)` on a terminal; without one, a plain log line
  every `interval()` seconds (the first after `interval()`, or `delay` when given) and a last
  one when a bar that was shown ends. The one way tfhull shows progress."""
  import tqdm  # pylint: disable=import-outside-toplevel
  if not on_terminal() and not kwargs.get("disable"):
    every = interval()
    kwargs.update(file=_LogLines(), mininterval=every, maxinterval=every,
                  dynamic_ncols=False, ncols=None, ascii=True,
                  bar_format="{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) "
                             "[{elapsed}<{remaining}, {rate_fmt}{postfix}]")
    kwargs["delay"] = every if kwargs.get("delay") is None else kwargs["delay"]
  return tqdm.tqdm(iterable, **kwargs)


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
    touch()
    if not on_terminal():  # No bars drawn (`progress` logs lines instead): nothing to clear.
      emit(record)
      return
    with tqdm.tqdm.external_write_mode(file=sys.stderr):
      emit(record)
  handler.emit = emit_above_bars
  if verbose:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  logging.getLogger("tensorflow").addFilter(_NoRetracingWarnings())
  import_tensorflow_quietly()


@contextlib.contextmanager
def heartbeat(label: str, every: Optional[float] = None):
  """While the block runs (on the command line, after `setup`), logs "<label>: still working"
  whenever `every` seconds (default `interval()`) pass with no output (log line, progress line,
  Keras epoch line: `touch`) and, on a terminal, no live progress bar, so no phase is silent
  for long."""
  every = interval() if every is None else every
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
      if on_terminal() and len(getattr(tqdm.tqdm, "_instances", ())):
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
