# lmdb_check fuzz target; included from tests/fuzz/CMakeLists.txt (needs ptb_fuzz_target).
ptb_fuzz_target(fuzz_lmdb_check ${CMAKE_CURRENT_LIST_DIR}/fuzz_lmdb_check.c
                ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_lmdb_check ptbstore)
