/*
 * gateway.h - the gateway program's internal header: wiring of config,
 * store, fast path and the metrics endpoint. Nothing outside gateway/ uses it.
 */
#ifndef TAPGATE_GATEWAY_H
#define TAPGATE_GATEWAY_H

#include "fastpath/fastpath.h"

#include <stdint.h>

/* Serve /metrics on addr:port from libmicrohttpd's thread, bounded against slow
 * clients (metrics.c). Returns a handle, or NULL having said why on stderr. */
void *gw_metrics_start(const char *addr, uint16_t port, const struct fp_counters *ctr);
void gw_metrics_stop(void *daemon);

/* The deny list's refresher (denylist.c): from tapsettle's store into the pipeline, once a second. */
struct fp_pipeline;
struct gw_denylist;
struct gw_denylist *gw_denylist_start(const char *settle_path, struct fp_pipeline *pipe);
void gw_denylist_stop(struct gw_denylist *d);

#endif
