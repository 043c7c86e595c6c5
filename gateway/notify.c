/*
 * notify.c - the gateway's state told to systemd (Type=notify), from a small
 * thread of its own so that the ingress loop and the writer never make a
 * system call for it.
 *
 * READY=1 once the ingress receives (the moment /healthz stops answering
 * "starting"): a unit ordered After=tapgate.service starts its load on a
 * gateway that hears it. STOPPING=1 as soon as a stop is asked for.
 * STOPPING=1 is also said when the gateway ends without one (gw_notify_stop).
 * WATCHDOG=1 at a quarter of WatchdogSec while the process runs; the status
 * line (systemctl status) says what /healthz says. Outside systemd the
 * proc_notify_* calls do nothing, and the thread only sleeps.
 */
#include "gateway/gateway.h"
#include "proc/proc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOTIFY_POLL_MS 100u /* how soon READY=1 and STOPPING=1 follow the event */

struct gw_notify {
	pthread_t thread;
	atomic_bool quit;
	const struct fp_counters *ctr;
	volatile sig_atomic_t *stop;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
	nanosleep(&ts, NULL);
}

static void *notify_main(void *arg)
{
	struct gw_notify *n = arg;
	uint64_t watchdog_us = proc_notify_watchdog_us();
	uint64_t ping_every_ms = watchdog_us / 4000u, since_ping_ms = 0;
	bool ready = false;
	char last[GW_HEALTH_MAX] = "";
	while (!atomic_load(&n->quit) && !*n->stop) {
		char why[GW_HEALTH_MAX];
		gw_health(n->ctr, why, sizeof(why));
		if (!ready && atomic_load(&((struct fp_counters *)n->ctr)->ingress_ready) != 0) {
			proc_notify_ready(why);
			ready = true;
		} else if (ready && strcmp(why, last) != 0) {
			proc_notify_status(why);
		}
		if (ready)
			snprintf(last, sizeof(last), "%s", why);
		if (watchdog_us != 0 && (since_ping_ms += NOTIFY_POLL_MS) >= ping_every_ms) {
			proc_notify_watchdog();
			since_ping_ms = 0;
		}
		sleep_ms(NOTIFY_POLL_MS);
	}
	/* A stop asked for, or the gateway ending on its own (gw_notify_stop):
	 * either way the manager hears STOPPING=1 before the process exits. A
	 * stop that ends within one poll would otherwise set quit first. */
	proc_notify_stopping();
	return NULL;
}

struct gw_notify *gw_notify_start(const struct fp_counters *ctr, volatile sig_atomic_t *stop)
{
	struct gw_notify *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->ctr = ctr;
	n->stop = stop;
	atomic_init(&n->quit, false);
	if (pthread_create(&n->thread, NULL, notify_main, n) != 0) {
		free(n);
		return NULL;
	}
	return n;
}

void gw_notify_stop(struct gw_notify *n)
{
	if (n == NULL)
		return;
	atomic_store(&n->quit, true);
	pthread_join(n->thread, NULL);
	free(n);
}
