#ifndef HES_ALLOCATION_COUNTER_H
#define HES_ALLOCATION_COUNTER_H

/// Heap allocations (malloc, calloc, realloc, aligned allocations) made so far by the calling
/// thread. hes-bench links this file, which wraps glibc's allocator entry points, so that
/// benchmarks report measured allocations per operation.
unsigned long long hes_thread_allocation_count(void);

#endif
