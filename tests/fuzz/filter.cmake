# The filter parser fuzz target (forensics/filter_*.c). Included by tests/fuzz/CMakeLists.txt.
ptb_fuzz_target(fuzz_filter ${CMAKE_CURRENT_LIST_DIR}/fuzz_filter.c
                ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_filter ptbfilter)
