/* placeholder: filled in by the detector that owns it (see forensics/CMakeLists.txt). */
extern "C" int audit_leak_scan_cuda_placeholder(void) { return 0; }
