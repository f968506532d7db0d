"""`scanaot.runtime`: loads compiled scan libraries; needs only numpy and ctypes."""
from .status import StatusError, check_status  # noqa: F401
