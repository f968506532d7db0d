/* The host-side GPU entry points of a scanaot cuda library, over the CUDA driver API.
 *
 * MLIR's gpu-to-llvm lowering calls mgpu* functions (normally from
 * libmlir_cuda_runtime.so, which needs the 136 MB libLLVM.so). This file provides
 * them, and is compiled into every cuda library, so an artifact needs only the
 * NVIDIA driver's libcuda.so.1 at run time. libcuda is opened with dlopen on first
 * use: the library itself links against libc only, and loading it on a machine
 * without a driver fails with an error the runtime reports, not a loader error.
 *
 * Errors never abort: the first failing driver call of a thread is recorded (and
 * later launches on that thread are skipped) until the runtime reads it with
 * scanaot_cuda_take_error() after the call. A failed module load is recorded for
 * every thread.
 *
 * Memory: host allocations of the generated code and the runtime's buffers are
 * CUDA managed memory (host and device can both touch them), each with a small
 * header that says how it was allocated.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef void *CUevent;
typedef unsigned long long CUdeviceptr;

#define CU_MEM_ATTACH_GLOBAL 1
#define CU_STREAM_NON_BLOCKING 1
#define CU_ATTR_CC_MAJOR 75
#define CU_ATTR_CC_MINOR 76
#define ERROR_LOAD_FAILED 1000 /* our code: libcuda.so.1 missing or incomplete */
#define ERROR_NO_FUNCTION 1001 /* our code: a kernel was launched from a module that failed to load */

static struct {
  CUresult (*Init)(unsigned);
  CUresult (*DeviceGetCount)(int *);
  CUresult (*DeviceGet)(CUdevice *, int);
  CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*CtxSetCurrent)(CUcontext);
  CUresult (*CtxSynchronize)(void);
  CUresult (*ModuleLoadData)(CUmodule *, const void *);
  CUresult (*ModuleUnload)(CUmodule);
  CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                           unsigned, CUstream, void **, void **);
  CUresult (*StreamCreate)(CUstream *, unsigned);
  CUresult (*StreamSynchronize)(CUstream);
  CUresult (*StreamWaitEvent)(CUstream, CUevent, unsigned);
  CUresult (*EventCreate)(CUevent *, unsigned);
  CUresult (*EventDestroy)(CUevent);
  CUresult (*EventSynchronize)(CUevent);
  CUresult (*EventRecord)(CUevent, CUstream);
  CUresult (*MemAllocManaged)(CUdeviceptr *, size_t, unsigned);
  CUresult (*MemFree)(CUdeviceptr);
  CUresult (*Memcpy)(CUdeviceptr, CUdeviceptr, size_t);
  CUresult (*MemcpyAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*MemsetD32Async)(CUdeviceptr, unsigned, size_t, CUstream);
  CUresult (*MemsetD16Async)(CUdeviceptr, unsigned short, size_t, CUstream);
  CUresult (*GetErrorString)(CUresult, const char **);
} cu;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CUresult init_status = ERROR_LOAD_FAILED;
static CUcontext primary_context;
static CUresult load_status; /* first failed module load, seen by every thread */
static char load_message[256];

static __thread CUresult thread_status;
static __thread char thread_message[256];
static __thread CUstream thread_stream;
static __thread int thread_has_context;

static void record(CUresult status, const char *what) {
  if (status == 0 || thread_status != 0) return;
  const char *text = NULL;
  if (status < ERROR_LOAD_FAILED && cu.GetErrorString) cu.GetErrorString(status, &text);
  if (status == ERROR_LOAD_FAILED) text = "libcuda.so.1 (the NVIDIA driver) could not be loaded";
  thread_status = status;
  snprintf(thread_message, sizeof thread_message, "%s: %s (CUDA error %d)", what,
           text ? text : "driver not usable", status);
}

#define BIND(field, symbol)                                            \
  if (!(*(void **)&cu.field = dlsym(lib, symbol))) return;

static void load_driver(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return;
  BIND(Init, "cuInit") BIND(DeviceGetCount, "cuDeviceGetCount") BIND(DeviceGet, "cuDeviceGet")
  BIND(DeviceGetAttribute, "cuDeviceGetAttribute")
  BIND(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain") BIND(CtxSetCurrent, "cuCtxSetCurrent")
  BIND(CtxSynchronize, "cuCtxSynchronize") BIND(ModuleLoadData, "cuModuleLoadData")
  BIND(ModuleUnload, "cuModuleUnload") BIND(ModuleGetFunction, "cuModuleGetFunction")
  BIND(LaunchKernel, "cuLaunchKernel") BIND(StreamCreate, "cuStreamCreate")
  BIND(StreamSynchronize, "cuStreamSynchronize") BIND(StreamWaitEvent, "cuStreamWaitEvent")
  BIND(EventCreate, "cuEventCreate") BIND(EventDestroy, "cuEventDestroy_v2")
  BIND(EventSynchronize, "cuEventSynchronize") BIND(EventRecord, "cuEventRecord")
  BIND(MemAllocManaged, "cuMemAllocManaged") BIND(MemFree, "cuMemFree_v2")
  BIND(Memcpy, "cuMemcpy") BIND(MemcpyAsync, "cuMemcpyAsync")
  BIND(MemsetD32Async, "cuMemsetD32Async") BIND(MemsetD16Async, "cuMemsetD16Async")
  BIND(GetErrorString, "cuGetErrorString")
  CUresult status = cu.Init(0);
  CUdevice device = 0;
  if (status == 0) status = cu.DeviceGet(&device, 0);
  if (status == 0) status = cu.DevicePrimaryCtxRetain(&primary_context, device);
  init_status = status;
}

/* The driver loaded, device 0's primary context current on this thread. */
static int ready(void) {
  pthread_once(&init_once, load_driver);
  if (init_status != 0) {
    record(init_status, "initializing the CUDA driver");
    return 0;
  }
  if (!thread_has_context) {
    CUresult status = cu.CtxSetCurrent(primary_context);
    if (status != 0) {
      record(status, "cuCtxSetCurrent");
      return 0;
    }
    thread_has_context = 1;
  }
  return 1;
}

/* ---- for the runtime (scanaot.runtime.cuda) ---- */

int scanaot_cuda_init(void) {
  ready();
  return init_status;
}

int scanaot_cuda_device_capability(int *major, int *minor) {
  if (!ready()) return thread_status;
  CUdevice device;
  CUresult status = cu.DeviceGet(&device, 0);
  if (status == 0) status = cu.DeviceGetAttribute(major, CU_ATTR_CC_MAJOR, device);
  if (status == 0) status = cu.DeviceGetAttribute(minor, CU_ATTR_CC_MINOR, device);
  return status;
}

/* The first error of this thread since the last call (or of a module load); clears
   the thread's error. */
int scanaot_cuda_take_error(char *message, size_t size) {
  CUresult status = thread_status ? thread_status : load_status;
  const char *text = thread_status ? thread_message : load_message;
  if (status && message && size) snprintf(message, size, "%s", text);
  thread_status = 0;
  thread_message[0] = 0;
  return status;
}

int scanaot_cuda_synchronize(void) {
  if (!ready()) return thread_status;
  CUresult status = cu.CtxSynchronize();
  record(status, "cuCtxSynchronize");
  return status;
}

int scanaot_cuda_copy(void *dst, const void *src, size_t bytes) {
  if (!ready()) return thread_status;
  CUresult status = cu.Memcpy((CUdeviceptr)dst, (CUdeviceptr)src, bytes);
  record(status, "cuMemcpy");
  return status;
}

/* Managed allocations carry a 64-byte header (keeps the alignment of what follows):
   the first word says managed or, after a failed cuMemAllocManaged, plain malloc.
   The failure is recorded, so no kernel of this call runs on that host memory. */
#define HEADER 64
#define MANAGED 0x6d616e61676564ULL
#define HOST 0x686f7374ULL

void *scanaot_cuda_alloc(size_t bytes) {
  CUdeviceptr p = 0;
  if (ready()) {
    CUresult status = cu.MemAllocManaged(&p, bytes + HEADER, CU_MEM_ATTACH_GLOBAL);
    record(status, "cuMemAllocManaged");
    if (status != 0) p = 0;
  }
  uint64_t kind = MANAGED;
  if (!p) {
    p = (CUdeviceptr)malloc(bytes + HEADER);
    kind = HOST;
    if (!p) {
      fprintf(stderr, "scanaot: out of host memory allocating %zu bytes\n", bytes);
      abort();
    }
  }
  *(uint64_t *)p = kind;
  return (char *)p + HEADER;
}

void *scanaot_cuda_aligned_alloc(size_t alignment, size_t bytes) {
  (void)alignment; /* managed memory is 256-aligned: header + payload stays 64-aligned */
  return scanaot_cuda_alloc(bytes);
}

void scanaot_cuda_free(void *ptr) {
  if (!ptr) return;
  char *base = (char *)ptr - HEADER;
  if (*(uint64_t *)base == MANAGED) {
    if (ready()) record(cu.MemFree((CUdeviceptr)base), "cuMemFree");
  } else {
    free(base);
  }
}

/* ---- the mgpu* entry points of MLIR's gpu-to-llvm lowering ---- */

CUstream mgpuStreamCreate(void) {
  /* one stream per thread, reused by every launch (the lowering creates and destroys
     one per async region; a real create per launch would dominate small steps) */
  if (!ready()) return NULL;
  if (!thread_stream) record(cu.StreamCreate(&thread_stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  return thread_stream;
}

void mgpuStreamDestroy(CUstream stream) { (void)stream; }

void mgpuStreamSynchronize(CUstream stream) {
  if (ready()) record(cu.StreamSynchronize(stream), "running a kernel (cuStreamSynchronize)");
}

void mgpuStreamWaitEvent(CUstream stream, CUevent event) {
  if (ready()) record(cu.StreamWaitEvent(stream, event, 0), "cuStreamWaitEvent");
}

CUevent mgpuEventCreate(void) {
  CUevent event = NULL;
  if (ready()) record(cu.EventCreate(&event, 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate");
  return event;
}

void mgpuEventDestroy(CUevent event) {
  if (event && ready()) record(cu.EventDestroy(event), "cuEventDestroy");
}

void mgpuEventSynchronize(CUevent event) {
  if (ready()) record(cu.EventSynchronize(event), "cuEventSynchronize");
}

void mgpuEventRecord(CUevent event, CUstream stream) {
  if (ready()) record(cu.EventRecord(event, stream), "cuEventRecord");
}

static CUmodule load_module(const void *data, const char *what) {
  CUmodule module = NULL;
  if (!ready()) {
    if (!load_status) {
      load_status = thread_status;
      snprintf(load_message, sizeof load_message, "%s", thread_message);
    }
    return NULL;
  }
  CUresult status = cu.ModuleLoadData(&module, data);
  if (status != 0) {
    record(status, what);
    if (!load_status) {
      load_status = status;
      snprintf(load_message, sizeof load_message, "%s", thread_message);
    }
    return NULL;
  }
  return module;
}

/* cubin (gpu.binary format bin); runs from the library's constructor */
CUmodule mgpuModuleLoad(void *data, size_t size) {
  (void)size;
  return load_module(data, "loading the library's cubin (cuModuleLoadData)");
}

/* PTX (format isa), compiled by the driver at load */
CUmodule mgpuModuleLoadJIT(void *data, int opt_level) {
  (void)opt_level;
  return load_module(data, "JIT-compiling the library's PTX (cuModuleLoadData)");
}

void mgpuModuleUnload(CUmodule module) {
  if (module && init_status == 0) cu.ModuleUnload(module);
}

CUfunction mgpuModuleGetFunction(CUmodule module, const char *name) {
  CUfunction function = NULL;
  if (!module) return NULL;
  if (ready()) record(cu.ModuleGetFunction(&function, module, name), "cuModuleGetFunction");
  return function;
}

void mgpuLaunchKernel(CUfunction function, intptr_t grid_x, intptr_t grid_y, intptr_t grid_z,
                      intptr_t block_x, intptr_t block_y, intptr_t block_z, int32_t shared_bytes,
                      CUstream stream, void **params, void **extra, size_t param_count) {
  (void)param_count;
  if (thread_status != 0) return; /* this call already failed: the runtime will raise */
  if (!function) {
    record(ERROR_NO_FUNCTION, "launching a kernel whose module failed to load");
    return;
  }
  if (grid_x == 0 || grid_y == 0 || grid_z == 0) return; /* an empty loop: nothing to run */
  if (ready())
    record(cu.LaunchKernel(function, grid_x, grid_y, grid_z, block_x, block_y, block_z,
                           shared_bytes, stream, params, extra),
           "cuLaunchKernel");
}

void *mgpuMemAlloc(uint64_t bytes, CUstream stream, int host_shared) {
  (void)stream;
  (void)host_shared;
  return scanaot_cuda_alloc(bytes);
}

void mgpuMemFree(void *ptr, CUstream stream) {
  if (stream && ready()) record(cu.StreamSynchronize(stream), "cuStreamSynchronize");
  scanaot_cuda_free(ptr);
}

void mgpuMemcpy(void *dst, void *src, size_t bytes, CUstream stream) {
  if (ready()) record(cu.MemcpyAsync((CUdeviceptr)dst, (CUdeviceptr)src, bytes, stream), "cuMemcpyAsync");
}

void mgpuMemset32(void *dst, unsigned value, size_t count, CUstream stream) {
  if (ready()) record(cu.MemsetD32Async((CUdeviceptr)dst, value, count, stream), "cuMemsetD32Async");
}

void mgpuMemset16(void *dst, unsigned short value, size_t count, CUstream stream) {
  if (ready()) record(cu.MemsetD16Async((CUdeviceptr)dst, value, count, stream), "cuMemsetD16Async");
}

void mgpuSetDefaultDevice(int32_t device) { (void)device; }
