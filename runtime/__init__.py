"""`scanaot.runtime`: load compiled scan libraries and call them; numpy + ctypes only.

    import scanaot.runtime as rt
    lib = rt.load("build/libpower.so")
    lib.power(np.arange(10, dtype="float32"), 4)
"""
from .elf import LibraryError  # noqa: F401
from .kernel import ArgumentError, Kernel, OutputTooLarge, ShapeError  # noqa: F401
from .library import Library, load, load_bytes  # noqa: F401
from .cuda import CudaError, DeviceArray  # noqa: F401
from .status import StatusError, check_status  # noqa: F401
from .state import State, StateError  # noqa: F401
from . import safetensors  # noqa: F401
