"""Headless Chromium for the report tests (Debian's `chromium`; `.ci/run` installs it)."""

import pathlib
import shutil
import subprocess
import tempfile


def chromium():
  """The Chromium binary on PATH, or None."""
  return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
      "google-chrome")


def render(exe, path, width=1400, height=900):
  """(dumped DOM, console lines) of `path` in headless Chromium, in a width x height window."""
  with tempfile.TemporaryDirectory() as profile:
    proc = subprocess.run(
        [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=1",
         f"--window-size={width},{height}", "--hide-scrollbars",
         "--virtual-time-budget=5000", "--dump-dom", pathlib.Path(path).as_uri()],
        capture_output=True, text=True, timeout=60, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return proc.stdout, [l for l in proc.stderr.splitlines() if "CONSOLE" in l]
