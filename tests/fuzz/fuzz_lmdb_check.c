/* libFuzzer target: lmdb_check_mem over arbitrary bytes must return 0 or PTB_ECORRUPT (or
 * PTB_ENOMEM) and never read outside the input. The corpus holds small real LMDB files. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "lmdb_check.h"
#include "ptb_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lmdb_check_report rep;
    int rc = lmdb_check_mem(data, size, &rep);
    if (rc != 0 && rc != PTB_ECORRUPT && rc != PTB_ENOMEM)
        abort();
    if ((rc == 0) != (rep.problems == 0) || rep.first[sizeof rep.first - 1] != 0)
        abort();
    return 0;
}
