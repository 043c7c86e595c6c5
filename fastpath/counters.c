/*
 * counters.c - the fast path's counters: their names for the metrics
 * endpoint, their initialisation, and the histogram buckets latencies and
 * batch sizes are counted in. Each counter is written by one thread only
 * (fastpath.h, struct fp_counters); the metrics thread reads them any time.
 */
#include "fastpath/fastpath.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

const char *fp_drop_name(unsigned drop)
{
	static const char *const names[FP_DROP_COUNT] = {
		"truncated", "oversized", "magic", "version", "type", "malformed", "validator",
		"key", "mac", "ring_full", "dedup_full", "stopping", "verifying", "busy_full"};
	return drop < FP_DROP_COUNT ? names[drop] : "unknown";
}

const char *fp_net_drop_name(unsigned drop)
{
	static const char *const names[FP_NET_DROP_COUNT] = {
		"not_ipv4", "wrong_mac", "runt", "bad_ip_header", "bad_ip_checksum", "ip_options",
		"fragment", "wrong_address", "not_udp", "wrong_port", "bad_udp_length",
		"bad_udp_checksum", "arp_ignored", "multi_segment"};
	return drop < FP_NET_DROP_COUNT ? names[drop] : "unknown";
}

void fp_counters_init(struct fp_counters *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->port.lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->port.taken, &attr);
	pthread_condattr_destroy(&attr);
}

unsigned fp_hist_bucket(uint64_t value)
{
	if (value < 2)
		return 0;
	unsigned b = 63u - (unsigned)__builtin_clzll(value);
	return b < FP_HIST_BUCKETS ? b : FP_HIST_BUCKETS - 1;
}
