"""The one exception type for bad user input."""


class UserError(Exception):
  """Bad input that the user can fix: the message is one line naming the problem and the fix.

  Components catch it at the top level, print `tfhull: error: <message>` and exit non-zero.
  """
