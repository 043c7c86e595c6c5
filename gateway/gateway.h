/*
 * gateway.h - the gateway program's internal header: wiring of config,
 * store, fast path and the metrics endpoint. Nothing outside gateway/ uses it.
 */
#ifndef TAPGATE_GATEWAY_H
#define TAPGATE_GATEWAY_H

#include "config/config.h"
#include "fastpath/fastpath.h"
#include "store/store.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit status of a configuration error found by --check (sysexits.h EX_CONFIG). */
#define GW_EXIT_CONFIG 78
#define GW_SETS_MAX 64
#define GW_ERR_MAX (3 * CFG_ERR_MAX) /* a message naming a key, its file and line, and a path */

/* Where the settings come from: the file and the -s overrides, in order. */
struct gw_settings {
	const char *path;
	const char *sets[GW_SETS_MAX];
	unsigned nsets;
};

/* Defaults, the file, the overrides, the cross-key checks. Returns 0, or a
 * cfg_error with "FILE:LINE: key 'S.N': why" (or "-s ...") in err. */
int gw_settings_read(const struct gw_settings *s, struct cfg *c, char *err, size_t err_len);
/* --check: read and check everything a start would (settings, key file,
 * addresses, writable paths); print the verdict to out. Returns 0 or
 * GW_EXIT_CONFIG. */
int gw_settings_check(const struct gw_settings *s, FILE *out);
/* Point standard error at gateway.log_file ("-": the original one). Returns 0, or -1 with err. */
int gw_log_open(const char *path, char *err, size_t err_len);

/* A reload's state: how to read the settings again and what is in force. */
struct gw_reload {
	const struct gw_settings *settings;
	struct cfg running;
	pthread_mutex_t lock; /* a reload runs whole, or the pipeline waits to go */
	struct fp_pipeline *pipe; /* NULL while starting and stopping: no reload then */
};
/* Give reloads the running pipeline, or take it away (NULL) before it is destroyed. */
void gw_reload_attach(struct gw_reload *r, struct fp_pipeline *pipe);
/* SIGHUP: read the settings and keys again and put them in force (arg: struct gw_reload). */
void gw_reload(void *arg);

/* Serve /metrics on addr:port from libmicrohttpd's thread, bounded against slow
 * clients (metrics.c); env (may be NULL) adds the store's and the validators'
 * figures. Returns a handle, or NULL having said why on stderr. */
void *gw_metrics_start(const char *addr, uint16_t port, const struct fp_counters *ctr, struct st_env *env);
void gw_metrics_stop(void *daemon);

/* What /healthz answers: true and "ok", or false and why not ("starting: ...",
 * "failing: the store refuses to commit ...", "failing: the dedup set is full ...").
 * why_len: GW_HEALTH_MAX. (metrics.c) */
#define GW_HEALTH_MAX 160
bool gw_health(const struct fp_counters *ctr, char *why, size_t why_len);

/* READY=1, STOPPING=1, WATCHDOG=1 and the status line to systemd, from a thread of
 * its own (notify.c). Returns NULL if the thread cannot start. */
struct gw_notify;
struct gw_notify *gw_notify_start(const struct fp_counters *ctr, volatile sig_atomic_t *stop);
void gw_notify_stop(struct gw_notify *n);

/* The deny list's refresher (denylist.c): from tapsettle's store into the pipeline, once a second. */
struct fp_pipeline;
struct gw_denylist;
struct gw_denylist *gw_denylist_start(const char *settle_path, struct fp_pipeline *pipe);
void gw_denylist_stop(struct gw_denylist *d);

#endif
