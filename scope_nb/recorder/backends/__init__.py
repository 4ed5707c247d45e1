"""Call capture: two back-ends that write the same events, chosen by the Python.

* `monitoring.MonitoringBackend` (Python >= 3.12): `sys.monitoring`, local events on
  the traced code (global ones that DISABLE themselves in trace-everything mode);
* `profile.ProfileBackend` (3.11): the profile hook with a code-object filter.

Both append to the calling thread's buffer: CALL (args), RETURN (value), EXCEPTION
(exception), and SUSPEND / RESUME for generator and coroutine frames (frame id); what
they share (`capture.Capture`) keeps values and takes the sampling decisions.
"""

from __future__ import annotations

import sys


def make_backend(rec):
    if sys.version_info >= (3, 12):
        from .monitoring import MonitoringBackend

        return MonitoringBackend(rec)
    from .profile import ProfileBackend

    return ProfileBackend(rec)
