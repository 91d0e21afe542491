/*
 * mg_time.h -- clocks.  Monotonic for durations and deadlines, realtime for
 * timestamps shown to people.
 */
#ifndef MG_TIME_H
#define MG_TIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t
mg_time_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t
mg_time_mono_ms(void)
{
    return mg_time_mono_us() / 1000;
}

static inline int64_t
mg_time_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
