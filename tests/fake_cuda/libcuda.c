/* A stand-in for the NVIDIA driver (libcuda.so.1), for tests on machines without a GPU.
 *
 * It runs nothing on a device: "managed" memory is host memory and kernel launches
 * are counted, not run. FAKE_CUDA selects the machine it pretends to be:
 *   nodevice  cuInit fails as on a machine whose driver sees no GPU
 *   sm80      an sm_80 GPU (too old for sm_90 cubins)
 *   badimage  an sm_90 GPU that rejects the library's device code
 *   badlaunch an sm_90 GPU on which every kernel launch fails
 *   anything else: an sm_90 GPU on which everything succeeds
 */
#include <stdlib.h>
#include <string.h>

static const char *mode(void) {
  const char *m = getenv("FAKE_CUDA");
  return m ? m : "";
}
static int is(const char *m) { return strcmp(mode(), m) == 0; }
static long launches;
long fake_cuda_launches(void) { return launches; }

int cuInit(unsigned flags) { (void)flags; return is("nodevice") ? 100 : 0; }
int cuDeviceGetCount(int *count) { *count = is("nodevice") ? 0 : 1; return 0; }
int cuDeviceGet(int *device, int ordinal) { *device = ordinal; return 0; }
int cuDeviceGetAttribute(int *value, int attribute, int device) {
  (void)device;
  if (attribute == 75) *value = is("sm80") ? 8 : 9;
  else if (attribute == 76) *value = 0;
  else *value = 0;
  return 0;
}
int cuGetErrorString(int status, const char **text) {
  *text = status == 100 ? "no CUDA-capable device is detected"
        : status == 200 ? "device kernel image is invalid"
        : status == 719 ? "unspecified launch failure" : "unknown error";
  return 0;
}
int cuDevicePrimaryCtxRetain(void **ctx, int device) { (void)device; *ctx = (void *)0x1; return 0; }
int cuCtxSetCurrent(void *ctx) { (void)ctx; return 0; }
int cuCtxSynchronize(void) { return 0; }
int cuModuleLoadData(void **module, const void *image) {
  (void)image;
  if (is("badimage")) return 200;
  *module = (void *)0x2;
  return 0;
}
int cuModuleUnload(void *module) { (void)module; return 0; }
int cuModuleGetFunction(void **function, void *module, const char *name) {
  (void)module; (void)name; *function = (void *)0x3; return 0;
}
int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   unsigned smem, void *stream, void **params, void **extra) {
  (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)smem; (void)stream;
  (void)params; (void)extra;
  launches++;
  return is("badlaunch") ? 719 : 0;
}
int cuStreamCreate(void **stream, unsigned flags) { (void)flags; *stream = (void *)0x4; return 0; }
int cuStreamSynchronize(void *stream) { (void)stream; return 0; }
int cuStreamWaitEvent(void *stream, void *event, unsigned flags) { (void)stream; (void)event; (void)flags; return 0; }
int cuEventCreate(void **event, unsigned flags) { (void)flags; *event = (void *)0x5; return 0; }
int cuEventDestroy_v2(void *event) { (void)event; return 0; }
int cuEventSynchronize(void *event) { (void)event; return 0; }
int cuEventRecord(void *event, void *stream) { (void)event; (void)stream; return 0; }
int cuMemAllocManaged(unsigned long long *ptr, size_t bytes, unsigned flags) {
  (void)flags;
  void *p = NULL;
  if (posix_memalign(&p, 256, bytes)) return 2;
  *ptr = (unsigned long long)p;
  return 0;
}
int cuMemFree_v2(unsigned long long ptr) { free((void *)ptr); return 0; }
int cuMemcpy(unsigned long long dst, unsigned long long src, size_t bytes) {
  memmove((void *)dst, (void *)src, bytes); return 0;
}
int cuMemcpyAsync(unsigned long long dst, unsigned long long src, size_t bytes, void *stream) {
  (void)stream; memmove((void *)dst, (void *)src, bytes); return 0;
}
int cuMemsetD32Async(unsigned long long dst, unsigned value, size_t count, void *stream) {
  (void)stream;
  for (size_t i = 0; i < count; i++) ((unsigned *)dst)[i] = value;
  return 0;
}
int cuMemsetD16Async(unsigned long long dst, unsigned short value, size_t count, void *stream) {
  (void)stream;
  for (size_t i = 0; i < count; i++) ((unsigned short *)dst)[i] = value;
  return 0;
}
